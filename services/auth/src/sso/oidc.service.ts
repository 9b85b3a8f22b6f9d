import { createHash } from 'node:crypto';
import { custom, errors, generators, Issuer, type BaseClient, type HttpOptions, type TokenSet } from 'openid-client';
import { PalisadeError } from '@palisade/contracts';
import type { AuthConfig } from '../auth.config';
import type { Transactions } from '../transactions';
import type { SsoRepository } from './sso.repository';
import { open, seal } from '../crypto/key-encryption';
import type { OidcSettings } from '../identity-providers/identity-providers.events';
import type { IdentityProvidersService } from '../identity-providers/identity-providers.service';
import type { SignInService } from '../sign-in/sign-in.service';

/** How long a browser may take at the identity provider. */
const REQUEST_TTL_SEC = 600;
/** Discovery documents are fetched again after this; JWKS whenever an unknown key id shows up. */
const DISCOVERY_TTL_MS = 3600_000;

const digest = (s: string) => createHash('sha256').update(s).digest();
const refused = (why: string) => new PalisadeError('unauthenticated', `OIDC sign-in refused: ${why}`);

interface CachedClient {
  client: BaseClient;
  fingerprint: string;
  at: number;
}

/**
 * OpenID Connect sign-in (authorization code flow with PKCE S256, state and nonce) at
 * each tenant's providers, with openid-client: discovery, ID token validation (signature
 * by the provider's JWKS, fetched again when it rotates; issuer, audience, expiry,
 * nonce). The request in progress is kept in PostgreSQL, usable once.
 */
export class OidcService {
  private readonly clients = new Map<string, CachedClient>();
  readonly redirectUri: string;

  constructor(
    private readonly transactions: Transactions,
    private readonly ssoRepo: Pick<SsoRepository, 'save' | 'take'>,
    private readonly config: Pick<AuthConfig, 'keyEncryptionKey' | 'publicUrl'>,
    private readonly providers: Pick<IdentityProvidersService, 'withSecret'>,
    private readonly signIns: Pick<SignInService, 'signInExternal'>,
  ) {
    this.redirectUri = `${config.publicUrl}/v1/sso/oidc/callback`;
  }

  /** Where to send the browser: the provider's authorization endpoint with this request's state, nonce and PKCE challenge. */
  async begin(tenantId: string, providerId: string, audience: string[] | undefined, now = new Date()): Promise<string> {
    const { settings, secret } = await this.providers.withSecret(tenantId, providerId, 'oidc');
    const client = await this.client(tenantId, providerId, settings.oidc, secret);
    const state = generators.state();
    const nonce = generators.nonce();
    const verifier = generators.codeVerifier();
    const key = digest(state);
    await this.transactions.inTransaction((tx) =>
      this.ssoRepo.save(
        tx,
        key,
        { tenantId, providerId, protocol: 'oidc', secret: seal(this.config.keyEncryptionKey, Buffer.from(verifier), `pkce:${key.toString('hex')}`), nonce, audience: audience ?? [] },
        new Date(now.getTime() + REQUEST_TTL_SEC * 1000),
      ),
    );
    return client.authorizationUrl({
      response_type: 'code',
      redirect_uri: this.redirectUri,
      scope: settings.oidc.scopes.join(' '),
      state,
      nonce,
      code_challenge: generators.codeChallenge(verifier),
      code_challenge_method: 'S256',
    });
  }

  /** The provider sent the browser back: exchange the code, validate the ID token, sign the user in. */
  async callback(params: { state: string; code?: string; error?: string; iss?: string }, sourceAddress: string, now = new Date()) {
    const key = digest(params.state);
    const request = await this.transactions.inTransaction((tx) => this.ssoRepo.take(tx, key, 'oidc', now));
    if (!request) throw refused('unknown, expired or already used state');
    if (params.error !== undefined) throw refused(`the identity provider answered ${params.error}`);
    if (!params.code) throw new PalisadeError('validation', 'code: required');
    const { settings, secret } = await this.providers.withSecret(request.tenantId, request.providerId, 'oidc');
    const client = await this.client(request.tenantId, request.providerId, settings.oidc, secret);
    const verifier = open(this.config.keyEncryptionKey, request.secret!, `pkce:${key.toString('hex')}`).toString();
    const claims = await this.exchange(client, params, request.nonce!, verifier);
    const groupsValue = settings.oidc.groupsClaim ? claims[settings.oidc.groupsClaim] : undefined;
    const groups = Array.isArray(groupsValue) ? groupsValue.filter((g): g is string => typeof g === 'string') : [];
    const email = verifiedEmailOf(claims);
    return this.signIns.signInExternal(
      {
        tenantId: request.tenantId,
        providerId: request.providerId,
        method: 'oidc',
        externalId: String(claims.sub),
        groups,
        ...(email ? { email } : {}),
        settings: { groupRoles: settings.oidc.groupRoles, groupTeams: settings.oidc.groupTeams, requireMappedGroup: false },
        ...(request.audience.length ? { audience: request.audience } : {}),
        sourceAddress,
      },
      now,
    );
  }

  /**
   * What `client.callback()` does (iss check, code exchange with the PKCE verifier, ID token
   * validation), with one difference: an ID token signed by a key id the cached JWKS does
   * not have makes us fetch the JWKS again at once (the provider rotated its keys), where
   * openid-client waits up to a minute between fetches and the code would be spent.
   */
  private async exchange(client: BaseClient, params: { code?: string; iss?: string }, nonce: string, verifier: string): Promise<Record<string, unknown>> {
    const issuer = client.issuer as Issuer & { reloadJwksUri(): Promise<void> };
    if (params.iss !== undefined ? params.iss !== issuer.metadata.issuer : issuer.metadata.authorization_response_iss_parameter_supported === true) {
      throw refused('the response names another issuer (iss)');
    }
    const validate = (client as unknown as { validateIdToken(t: TokenSet, nonce: string, source: 'token'): Promise<unknown> }).validateIdToken.bind(client);
    try {
      const tokens = await client.grant({ grant_type: 'authorization_code', code: params.code, redirect_uri: this.redirectUri, code_verifier: verifier });
      if (!tokens.id_token) throw refused('no ID token in the token response');
      try {
        await validate(tokens, nonce, 'token');
      } catch (e) {
        if (!(e instanceof errors.RPError && e.message.startsWith('no valid key found'))) throw e;
        await issuer.reloadJwksUri();
        await validate(tokens, nonce, 'token');
      }
      return tokens.claims();
    } catch (e) {
      if (e instanceof PalisadeError) throw e;
      if (e instanceof errors.RPError || e instanceof errors.OPError) throw refused(e.message);
      throw new PalisadeError('unavailable', 'the identity provider does not answer: try again later');
    }
  }

  /** A discovered client per provider configuration, kept an hour. */
  private async client(tenantId: string, providerId: string, settings: OidcSettings, secret: string): Promise<BaseClient> {
    const id = `${tenantId}/${providerId}`;
    const fingerprint = digest(JSON.stringify(settings) + secret).toString('hex');
    const cached = this.clients.get(id);
    if (cached && cached.fingerprint === fingerprint && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.client;
    const httpOptions = (_url: URL, options: HttpOptions): HttpOptions => ({ ...options, timeout: 5000, ...(settings.caCertificate ? { ca: settings.caCertificate } : {}) });
    // A subclass, so that the CA applies to this provider's discovery only.
    class ProviderIssuer extends Issuer {}
    (ProviderIssuer as unknown as Record<symbol, unknown>)[custom.http_options] = httpOptions;
    let issuer: Issuer;
    try {
      issuer = await ProviderIssuer.discover(settings.issuer);
    } catch {
      throw new PalisadeError('unavailable', 'the identity provider’s discovery document could not be read');
    }
    if (issuer.metadata.issuer !== settings.issuer.replace(/\/$/, '') && issuer.metadata.issuer !== settings.issuer) throw refused('the discovery document names another issuer');
    issuer[custom.http_options] = httpOptions;
    const client = new issuer.Client({ client_id: settings.clientId, client_secret: secret, redirect_uris: [this.redirectUri], response_types: ['code'], id_token_signed_response_alg: 'RS256' });
    client[custom.http_options] = httpOptions;
    client[custom.clock_tolerance] = 5;
    this.clients.set(id, { client, fingerprint, at: Date.now() });
    return client;
  }
}

/** The ID token's e-mail when the provider says it is verified: a missing or non-true `email_verified` is not verified. */
export function verifiedEmailOf(claims: Record<string, unknown>): string | undefined {
  return typeof claims.email === 'string' && claims.email_verified === true ? claims.email : undefined;
}
