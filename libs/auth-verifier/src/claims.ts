/**
 * The access token contract between the auth service (issuer) and every verifier.
 * Short-lived JWTs signed with EdDSA (Ed25519) or ES256, `kid` in the header, keys
 * published as a JWKS at auth's `/.well-known/jwks.json`.
 */
export const ACCESS_TOKEN_ISSUER = 'palisade-auth';
export const ACCESS_TOKEN_TYPE = 'at+jwt';
export const ALLOWED_ALGORITHMS = ['EdDSA', 'ES256'] as const;

export interface AccessTokenClaims {
  iss: typeof ACCESS_TOKEN_ISSUER;
  /** Principal id (user, agent or service name). */
  sub: string;
  /** Audience: the service(s) the token is for, e.g. `palisade:policy`. */
  aud: string | string[];
  exp: number;
  iat: number;
  /** Issued at, in milliseconds (same instant as `iat`): revocations compare with it, not with the second. */
  iat_ms?: number;
  /** Token id: single tokens are revoked by it. */
  jti: string;
  /** Tenant. */
  tid: string;
  /** Principal type. */
  ptp: 'user' | 'agent' | 'service';
  /** Session (family of refresh and access tokens). */
  sid?: string;
  /**
   * For an agent: the user it acts for, RFC 8693 style (`{ sub: <user id> }`). A bare
   * string (the user id) is accepted from issuers that predate the object form.
   */
  act?: { sub: string } | string;
  /** Teams (ids) of the principal: a user's memberships, or an agent's one team. ABAC reads them as `subject.teams`. */
  teams?: string[];
  /** The primary team (a user's first, an agent's own): `subject.department`. */
  dept?: string;
  /** Scopes. */
  scp?: string[];
  /** RFC 8705 certificate binding: SHA-256 thumbprint of the client certificate (base64url). */
  cnf?: { 'x5t#S256': string };
}

export function audienceOf(service: string): string {
  return `palisade:${service}`;
}

/** The user an agent's token acts for (`act.sub`, or the older bare string), if any. */
export function actingForOf(claims: Pick<AccessTokenClaims, 'act'>): string | undefined {
  const act = claims.act;
  if (typeof act === 'string') return act || undefined;
  if (act && typeof act === 'object' && typeof act.sub === 'string' && act.sub) return act.sub;
  return undefined;
}
