import { actingForOf, type AccessTokenClaims } from './claims';

/**
 * How far apart the clocks of two auth instances may be (ms): a token issued by one
 * instance up to this long after a subject revocation recorded by another is still
 * refused (the safe side). Within one instance the order is exact: a token is signed
 * after the sign-in that produced it committed, which was after the change committed.
 */
export const REVOCATION_SKEW_MS = 5;

/**
 * When a token was issued, in milliseconds: its `iat_ms` claim when it has one that
 * agrees with `iat`, else the first millisecond of its `iat` second (tokens of issuers that
 * predate `iat_ms`: same-second revocations refuse them, as they always did).
 */
export function issuedAtMs(claims: Pick<AccessTokenClaims, 'iat' | 'iat_ms'>): number {
  const ms = claims.iat_ms;
  if (typeof ms === 'number' && Number.isInteger(ms) && Math.floor(ms / 1000) === claims.iat) return ms;
  return claims.iat * 1000;
}

/**
 * What has been revoked, as far as this process knows: single tokens, sessions,
 * subjects (a user, agent or service account) and signing keys. Fed by the auth
 * service's revocation events; kept small by forgetting entries once every token they
 * could match has expired on its own.
 *
 * No comparison here depends on clock granularity: a session ends for good (its refresh
 * tokens die with it, an API key's session with the key), so every token of a revoked
 * session is refused whenever it was issued; a subject may sign in again, so its tokens
 * are compared with the revocation to the millisecond (`iat_ms`, REVOCATION_SKEW_MS).
 */
export class RevocationList {
  private readonly tokens = new Map<string, number>(); // jti -> forget after (s)
  private readonly sessions = new Map<string, number>(); // sid -> revoked at (ms)
  private readonly subjects = new Map<string, number>(); // tid/sub -> revoked at (ms)
  private readonly keys = new Set<string>();

  constructor(private readonly maxTokenLifetimeSec = 3600) {}

  revokeToken(jti: string, expiresAt: number): void {
    this.tokens.set(jti, expiresAt);
  }

  /** Every token of the session is revoked; `atMs` (ms) only says when the entry may be forgotten. */
  revokeSession(sid: string, atMs: number): void {
    this.sessions.set(sid, Math.max(atMs, this.sessions.get(sid) ?? 0));
  }

  /** Tokens of the subject issued up to `atMs` (ms, plus REVOCATION_SKEW_MS) are revoked; later ones are not. */
  revokeSubject(tenantId: string, subject: string, atMs: number): void {
    const key = `${tenantId}/${subject}`;
    this.subjects.set(key, Math.max(atMs, this.subjects.get(key) ?? 0));
  }

  revokeKey(kid: string): void {
    this.keys.add(kid);
  }

  /** The reason a token with these claims is revoked, or undefined. */
  reasonRevoked(claims: Pick<AccessTokenClaims, 'jti' | 'sid' | 'tid' | 'sub' | 'iat' | 'iat_ms' | 'act'>, kid?: string): string | undefined {
    if (this.tokens.has(claims.jti)) return 'token revoked';
    if (claims.sid !== undefined && this.sessions.has(claims.sid)) return 'session revoked';
    const subjectAt = this.subjects.get(`${claims.tid}/${claims.sub}`);
    if (subjectAt !== undefined && issuedAtMs(claims) <= subjectAt + REVOCATION_SKEW_MS) return 'principal revoked';
    // An agent's token stands on the user it acts for: revoking that user (disabled, a role
    // taken away, every session revoked) revokes the agent tokens issued for them until then.
    const actingFor = actingForOf(claims);
    const actorAt = actingFor === undefined ? undefined : this.subjects.get(`${claims.tid}/${actingFor}`);
    if (actorAt !== undefined && issuedAtMs(claims) <= actorAt + REVOCATION_SKEW_MS) return 'acting user revoked';
    if (kid !== undefined && this.keys.has(kid)) return 'signing key revoked';
    return undefined;
  }

  /** Drop entries no live token can match any more. */
  prune(nowSec: number): void {
    for (const [jti, expiresAt] of this.tokens) if (expiresAt < nowSec) this.tokens.delete(jti);
    for (const map of [this.sessions, this.subjects]) {
      for (const [key, atMs] of map) if (atMs + this.maxTokenLifetimeSec * 1000 < nowSec * 1000) map.delete(key);
    }
  }

  size(): number {
    return this.tokens.size + this.sessions.size + this.subjects.size + this.keys.size;
  }
}
