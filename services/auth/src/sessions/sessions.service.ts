import { PalisadeError, type Principal } from '@palisade/contracts';
import { streamName } from '@palisade/eventsourcing';
import type { AuthRuntime } from '../auth.runtime';
import { hashRefreshToken, isRefreshTokenShaped, newRefreshToken, scopesOf } from './token-issuer';

const userStream = (tenantId: string, userId: string) => streamName('user', `${tenantId}.${userId}`);

/** Refresh-token exchange (rotation with reuse detection), sign-out and revocation. */
export class SessionsService {
  constructor(private readonly rt: AuthRuntime) {}

  /**
   * One refresh token buys one access token and the next refresh token. Presenting one
   * that was already exchanged means it was copied: the whole session is revoked.
   */
  async refresh(refreshToken: string) {
    if (!isRefreshTokenShaped(refreshToken)) throw new PalisadeError('unauthenticated', 'invalid refresh token');
    const next = newRefreshToken();
    const outcome = await this.rt.sessionsRepo.rotate(this.rt.dataSource, hashRefreshToken(refreshToken), next.hash);
    if (outcome.kind === 'reused') {
      await this.rt.users.handle(userStream(outcome.tenantId, outcome.userId), {
        type: 'RevokeSession',
        data: { userId: outcome.userId, sessionId: outcome.sessionId, reason: 'refresh_token_reuse' },
        metadata: { tenantId: outcome.tenantId, actor: { type: 'service', id: 'auth' }, now: new Date() },
      });
      throw new PalisadeError('unauthenticated', 'refresh token was already used: the session is revoked');
    }
    if (outcome.kind === 'invalid') throw new PalisadeError('unauthenticated', 'invalid refresh token');
    const s = outcome.session;
    const { accessToken, expiresIn } = await this.rt.issuer.issue({
      tenantId: s.tenantId,
      subject: s.userId,
      principalType: 'user',
      audience: s.audience,
      scopes: scopesOf(s.roles, s.tenantId === this.rt.config.AUTH_OPERATOR_TENANT),
      sessionId: s.sessionId,
      teams: s.teams,
    });
    return { tokenType: 'Bearer' as const, accessToken, expiresIn, refreshToken: next.token, sessionId: s.sessionId };
  }

  /** Ends the caller's own session: its tokens are refused everywhere within a second. */
  async signOut(principal: Principal): Promise<void> {
    if (principal.type !== 'user' || !principal.sessionId) throw new PalisadeError('validation', 'only a user session can sign out');
    await this.rt.users.handle(userStream(principal.tenantId, principal.id), {
      type: 'SignOut',
      data: { userId: principal.id, sessionId: principal.sessionId },
      metadata: { tenantId: principal.tenantId, actor: { type: 'user', id: principal.id }, now: new Date() },
    });
  }

  /** An administrator revokes one session of their tenant. */
  async revokeSession(admin: Principal, sessionId: string): Promise<void> {
    const session = await this.rt.read((tx) => this.rt.sessionsRepo.find(tx, admin.tenantId, sessionId));
    if (!session) throw new PalisadeError('not_found', 'session not found');
    await this.rt.users.handle(userStream(admin.tenantId, session.userId), {
      type: 'RevokeSession',
      data: { userId: session.userId, sessionId, reason: 'admin' },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
  }
}
