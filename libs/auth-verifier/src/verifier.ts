import { createHash, X509Certificate } from 'node:crypto';
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, ALLOWED_ALGORITHMS, actingForOf, type AccessTokenClaims } from './claims';
import type { RevocationList } from './revocations';

export interface AccessTokenVerifierOptions {
  /** Where signing keys come from: a remote JWKS (cached, refreshed on unknown kid) or a local set. */
  keys: JWTVerifyGetKey;
  /** This service's audience, e.g. `palisade:policy`. */
  audience: string;
  revocations: RevocationList;
  clockToleranceSec?: number;
  /** Longest lifetime accepted, whatever the token says. */
  maxLifetimeSec?: number;
  /** The issuer accepted: the auth service (default), or a service's own tokens in the same format (the sandbox orchestrator's sandbox-scoped tokens). */
  issuer?: string;
  /**
   * Remember tokens whose signature and claims verified, by their SHA-256 (never the token),
   * for at most `ttlMs` and never past their expiry: a hit skips the signature check only;
   * revocation, the principal type and the certificate binding are checked on every use,
   * so a revoked token, session, principal or signing key is refused at once. A signing key
   * withdrawn from the key set without being revoked still admits its cached tokens for up
   * to `ttlMs`. Absent: every token is verified in full.
   */
  cache?: { ttlMs: number; max: number };
}

interface VerifiedToken {
  claims: AccessTokenClaims;
  kid: string | undefined;
  /** ms: the earliest of the cache's ttl, the token's expiry and its longest accepted lifetime. */
  until: number;
}

const unauthenticated = (message: string) => new PalisadeError('unauthenticated', message);

/** RFC 8705 `x5t#S256`: base64url SHA-256 of the DER certificate. */
export function certificateThumbprint(certificate: X509Certificate | Buffer): string {
  const der = certificate instanceof X509Certificate ? certificate.raw : certificate;
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * Verifies an access token: algorithm on the allow-list (no `none`, no HMAC, so no
 * key-type confusion), signature by a published key, issuer, audience, expiry, a
 * bounded lifetime, revocation, and the certificate binding when the token has one.
 * Every failure is a PalisadeError 'unauthenticated' with a reason safe to show.
 */
export class AccessTokenVerifier {
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(private readonly options: AccessTokenVerifierOptions) {}

  /**
   * `certificateBindingChecked`: the token was presented to another service, which checked
   * its certificate binding against the connection it came on, and forwards it to ask a
   * decision about its holder (the policy service); the binding is not checked again.
   */
  async verify(
    token: string,
    context: { clientCertificate?: X509Certificate | Buffer; certificateBindingChecked?: boolean } = {},
  ): Promise<{ principal: Principal; claims: AccessTokenClaims }> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 8192) throw unauthenticated('malformed access token');
    const { claims, kid } = await this.signed(token);
    if (!['user', 'agent', 'service'].includes(claims.ptp)) throw unauthenticated('access token has an unknown principal type');
    const revoked = this.options.revocations.reasonRevoked(claims, kid);
    if (revoked) throw unauthenticated(`access token rejected: ${revoked}`);
    const bound = claims.cnf?.['x5t#S256'];
    if (bound !== undefined && context.certificateBindingChecked !== true) {
      if (!context.clientCertificate) throw unauthenticated('access token is bound to a client certificate that was not presented');
      if (certificateThumbprint(context.clientCertificate) !== bound) throw unauthenticated('access token is bound to another client certificate');
    }
    const principal: Principal = { type: claims.ptp, id: claims.sub, tenantId: claims.tid };
    const actingFor = actingForOf(claims);
    if (actingFor) principal.actingFor = actingFor;
    if (Array.isArray(claims.teams) && claims.teams.every((t) => typeof t === 'string')) principal.teams = claims.teams;
    if (typeof claims.dept === 'string') principal.department = claims.dept;
    if (claims.scp) principal.scopes = claims.scp;
    if (claims.sid) principal.sessionId = claims.sid;
    return { principal, claims };
  }

  /** The token's claims and key id once its signature and claims verified, from the cache while it holds them. */
  private async signed(token: string): Promise<{ claims: AccessTokenClaims; kid: string | undefined }> {
    const cache = this.options.cache;
    const key = cache ? createHash('sha256').update(token).digest('base64') : undefined;
    if (key) {
      const hit = this.verified.get(key);
      if (hit && hit.until > Date.now()) return hit;
      if (hit) this.verified.delete(key);
    }
    let claims: AccessTokenClaims;
    let kid: string | undefined;
    try {
      const result = await jwtVerify(token, this.options.keys, {
        algorithms: [...ALLOWED_ALGORITHMS],
        issuer: this.options.issuer ?? ACCESS_TOKEN_ISSUER,
        audience: this.options.audience,
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance: this.options.clockToleranceSec ?? 5,
        maxTokenAge: `${this.options.maxLifetimeSec ?? 3600}s`,
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'tid', 'ptp'],
      });
      claims = result.payload as unknown as AccessTokenClaims;
      kid = result.protectedHeader.kid;
    } catch (error) {
      throw unauthenticated(reasonOf(error));
    }
    if (cache && key) {
      const until = Math.min(Date.now() + cache.ttlMs, claims.exp * 1000, (claims.iat + (this.options.maxLifetimeSec ?? 3600)) * 1000);
      // bounded: the oldest entry makes room (a Map iterates in insertion order)
      if (this.verified.size >= cache.max) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(key, { claims, kid, until });
    }
    return { claims, kid };
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'access token expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `access token claim ${error.claim} is invalid`;
  if (error instanceof errors.JOSEAlgNotAllowed) return 'access token algorithm not allowed';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'access token signature is invalid';
  if (error instanceof errors.JWKSNoMatchingKey) return 'access token signed by an unknown key';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed access token';
  if (error instanceof errors.JWKSTimeout) return 'signing keys unavailable';
  return 'access token rejected';
}
