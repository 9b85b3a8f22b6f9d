import { randomUUID } from 'node:crypto';
import { AccessTokenVerifier, ACCESS_TOKEN_TYPE, audienceOf, createLocalJWKSet, RevocationList } from '@palisade/auth-verifier';
import { PalisadeError } from '@palisade/contracts';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';

/** The issuer of sandbox-scoped tokens: this service, not the auth service (whose tokens are people's and agents'). */
export const SANDBOX_TOKEN_ISSUER = 'palisade-sandbox-orchestrator';
const AUDIENCE = audienceOf('sandbox-orchestrator');
const SUBJECT = /^sandbox:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * Sandbox-scoped tokens: the access-token format of `@palisade/auth-verifier` (an `at+jwt`,
 * EdDSA, `kid`, `jti`, `tid`, `exp`), issued by this service for one sandbox (`sub:
 * sandbox:<id>`) and expiring with it (its lifetime limit), verified by auth-verifier's
 * `AccessTokenVerifier` against this service's own key. It names no user and no agent and
 * opens only that sandbox's own callbacks; a stopped or deleted sandbox refuses it. The
 * signing key lives in memory only: after a restart, tokens are minted again (`POST
 * /v1/sandboxes/:id/token`). Token values never enter logs, events or the database.
 */
export class SandboxTokens {
  private constructor(
    private readonly key: KeyLike,
    private readonly kid: string,
    private readonly verifier: AccessTokenVerifier,
    private readonly maxLifetimeMs: number,
  ) {}

  /** A fresh key; tokens live at most `maxLifetimeMs` (the sandbox lifetime limit). */
  static async create(maxLifetimeMs: number): Promise<SandboxTokens> {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const kid = randomUUID();
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
    const maxLifetimeSec = Math.ceil(maxLifetimeMs / 1000) + 60;
    const verifier = new AccessTokenVerifier({ keys: createLocalJWKSet({ keys: [jwk] }), audience: AUDIENCE, issuer: SANDBOX_TOKEN_ISSUER, revocations: new RevocationList(maxLifetimeSec), maxLifetimeSec });
    return new SandboxTokens(privateKey, kid, verifier, maxLifetimeMs);
  }

  /** A token for the sandbox's own callbacks, valid until `expiresAt` (never past its lifetime limit). */
  async mint(tenantId: string, sandboxId: string, expiresAt: Date, now = new Date()): Promise<string> {
    return new SignJWT({ tid: tenantId, ptp: 'service', iat_ms: now.getTime() })
      .setProtectedHeader({ alg: 'EdDSA', typ: ACCESS_TOKEN_TYPE, kid: this.kid })
      .setIssuer(SANDBOX_TOKEN_ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(`sandbox:${sandboxId}`)
      .setJti(randomUUID())
      .setIssuedAt(Math.floor(now.getTime() / 1000))
      .setExpirationTime(Math.floor(Math.min(expiresAt.getTime(), now.getTime() + this.maxLifetimeMs) / 1000))
      .sign(this.key);
  }

  /** The sandbox a token opens; anything else (another issuer's token, expired, altered) is unauthenticated. */
  async verify(token: string): Promise<{ tenantId: string; sandboxId: string }> {
    const { claims } = await this.verifier.verify(token);
    const sandbox = SUBJECT.exec(claims.sub);
    if (!sandbox || claims.ptp !== 'service') throw new PalisadeError('unauthenticated', 'not a sandbox token');
    return { tenantId: claims.tid, sandboxId: sandbox[1] };
  }
}
