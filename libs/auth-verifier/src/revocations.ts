import type { AccessTokenClaims } from './claims';

/**
 * What has been revoked, as far as this process knows: single tokens, sessions,
 * subjects (a user, agent or service account) and signing keys. Fed by the auth
 * service's revocation events; kept small by forgetting entries once every token they
 * could match has expired on its own.
 */
export class RevocationList {
  private readonly tokens = new Map<string, number>(); // jti -> forget after (s)
  private readonly sessions = new Map<string, number>(); // sid -> revoked at (s)
  private readonly subjects = new Map<string, number>(); // tid/sub -> revoked at (s)
  private readonly keys = new Set<string>();

  constructor(private readonly maxTokenLifetimeSec = 3600) {}

  revokeToken(jti: string, expiresAt: number): void {
    this.tokens.set(jti, expiresAt);
  }

  /** Tokens of the session issued up to `at` (seconds) are revoked. */
  revokeSession(sid: string, at: number): void {
    this.sessions.set(sid, Math.max(at, this.sessions.get(sid) ?? 0));
  }

  revokeSubject(tenantId: string, subject: string, at: number): void {
    const key = `${tenantId}/${subject}`;
    this.subjects.set(key, Math.max(at, this.subjects.get(key) ?? 0));
  }

  revokeKey(kid: string): void {
    this.keys.add(kid);
  }

  /** The reason a token with these claims is revoked, or undefined. */
  reasonRevoked(claims: Pick<AccessTokenClaims, 'jti' | 'sid' | 'tid' | 'sub' | 'iat'>, kid?: string): string | undefined {
    if (this.tokens.has(claims.jti)) return 'token revoked';
    if (claims.sid !== undefined) {
      const at = this.sessions.get(claims.sid);
      if (at !== undefined && claims.iat <= at) return 'session revoked';
    }
    const subjectAt = this.subjects.get(`${claims.tid}/${claims.sub}`);
    if (subjectAt !== undefined && claims.iat <= subjectAt) return 'principal revoked';
    if (kid !== undefined && this.keys.has(kid)) return 'signing key revoked';
    return undefined;
  }

  /** Drop entries no live token can match any more. */
  prune(nowSec: number): void {
    for (const [jti, expiresAt] of this.tokens) if (expiresAt < nowSec) this.tokens.delete(jti);
    for (const map of [this.sessions, this.subjects]) {
      for (const [key, at] of map) if (at + this.maxTokenLifetimeSec < nowSec) map.delete(key);
    }
  }

  size(): number {
    return this.tokens.size + this.sessions.size + this.subjects.size + this.keys.size;
  }
}
