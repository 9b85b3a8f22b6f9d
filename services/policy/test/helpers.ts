import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { infra } from '@palisade/testing';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** HTTPS to a local service, with an access token or a client certificate. */
export function call(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string; cert?: string; key?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca, headers, servername: 'localhost', cert: options.cert, key: options.key, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A token issuer of our own (EdDSA), standing in for the auth service; the service verifies for real. */
export class TestIssuer {
  private constructor(
    private readonly key: KeyLike,
    readonly jwks: string,
  ) {}

  static async create(): Promise<TestIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'EdDSA', use: 'sig' };
    return new TestIssuer(privateKey, JSON.stringify({ keys: [jwk] }));
  }

  token(p: { tenantId: string; id: string; type?: 'user' | 'agent'; actingFor?: string; scopes?: string[] }): Promise<string> {
    const claims: Record<string, unknown> = { tid: p.tenantId, ptp: p.type ?? 'user', jti: randomUUID() };
    if (p.actingFor) claims.act = p.actingFor;
    if (p.scopes) claims.scp = p.scopes;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'EdDSA', kid: 'test-1', typ: 'at+jwt' })
      .setIssuer('palisade-auth')
      .setAudience('palisade:policy')
      .setSubject(p.id)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.key);
  }
}
