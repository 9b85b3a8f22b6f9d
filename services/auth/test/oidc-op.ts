import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:https';
import { ensureCa, issueCertificate } from '@palisade/pki';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Provider = require('oidc-provider');

/** A real OpenID Provider (oidc-provider) over HTTPS on 127.0.0.1, in this process, for the tests. */
export interface TestOp {
  issuer: string;
  clientSecret: string;
  caPem: string;
  /** Who the next interactive login signs in as. */
  loginAs(sub: string, groups: string[]): void;
  /** New signing key (new kid); the old one is no longer published. */
  rotateKeys(): void;
  /** Follow the browser's redirects from `url` until one leaves the provider; returns that location. */
  browse(url: string): Promise<string>;
  close(): Promise<void>;
}

function rsaJwks() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: `k-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' }] };
}

export async function startTestOp(o: { pkiDir: string; port: number; redirectUri: string }): Promise<TestOp> {
  const { ca } = await ensureCa(o.pkiDir);
  const tls = await issueCertificate(ca, { kind: 'server', name: 'oidc-op', dns: ['localhost'], ips: ['127.0.0.1'] });
  const issuer = `https://localhost:${o.port}`;
  const clientSecret = randomBytes(24).toString('base64url');
  let account = { sub: 'nobody', groups: [] as string[] };
  const make = () =>
    new Provider(issuer, {
      clients: [{ client_id: 'palisade', client_secret: clientSecret, redirect_uris: [o.redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
      jwks: rsaJwks(),
      findAccount: async (_ctx: unknown, sub: string) => ({
        accountId: sub,
        claims: async () => ({ sub, email: `${sub}@idp.test`, email_verified: true, groups: sub === account.sub ? account.groups : [] }),
      }),
      claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
      scopes: ['openid', 'email', 'groups'],
      conformIdTokenClaims: false,
      pkce: { required: () => true, methods: ['S256'] },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      cookies: { keys: [randomBytes(16).toString('hex')] },
    });
  let provider = make();
  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, async (req, res) => {
    try {
      if (req.url?.startsWith('/interaction/')) {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
        grant.addOIDCScope(details.params.scope);
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { login: { accountId: account.sub }, consent: { grantId } }, { mergeWithLastSubmission: false });
        return;
      }
      provider.callback()(req, res);
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  });
  await new Promise<void>((resolve) => server.listen(o.port, '127.0.0.1', resolve));

  const cookies = new Map<string, string>();
  const get = (url: string) =>
    new Promise<{ status: number; location?: string }>((resolve, reject) => {
      const u = new URL(url);
      const req = request(
        { host: '127.0.0.1', port: u.port, path: `${u.pathname}${u.search}`, servername: 'localhost', ca: tls.caPem, headers: { host: u.host, cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') }, agent: false },
        (res) => {
          for (const c of res.headers['set-cookie'] ?? []) {
            const [pair] = c.split(';');
            const i = pair.indexOf('=');
            cookies.set(pair.slice(0, i), pair.slice(i + 1));
          }
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  return {
    issuer,
    clientSecret,
    caPem: tls.caPem,
    loginAs: (sub, groups) => (account = { sub, groups }),
    rotateKeys: () => (provider = make()),
    async browse(url: string) {
      let next = url;
      for (let hops = 0; hops < 10; hops++) {
        const res = await get(next);
        if (!res.location) throw new Error(`the provider answered ${res.status} without a redirect at ${next}`);
        next = new URL(res.location, next).toString();
        if (!next.startsWith(issuer)) return next;
      }
      throw new Error('too many redirects');
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
