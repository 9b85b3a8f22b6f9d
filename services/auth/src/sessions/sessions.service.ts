import { PalisadeError, SYSTEM_TENANT, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler } from '@palisade/eventsourcing';
import type { AuthConfig } from '../auth.config';
import type { Transactions } from '../transactions';
import type { UserCommand, UserState } from '../users/users.decider';
import type { UserEvent } from '../users/users.events';
import type { RefreshOutcome, SessionsRepository } from './sessions.repository';
import { hashRefreshToken, isRefreshTokenShaped, newRefreshToken, scopesOf, type TokenIssuer } from './token-issuer';

const userStream = (tenantId: string, userId: string) => streamName('user', `${tenantId}.${userId}`);

/** Refresh-token exchange (rotation with reuse detection), sign-out and revocation. */
export class SessionsService {
  constructor(
    private readonly transactions: Transactions,
    private readonly userCommands: CommandHandler<UserState, UserCommand, UserEvent>,
    private readonly sessionsRepo: Pick<SessionsRepository, 'find'>,
    /** Rotates a refresh token in a statement of its own (no transaction around it). */
    private readonly refreshTokens: { rotate(oldHash: Buffer, newHash: Buffer): Promise<RefreshOutcome> },
    private readonly issuer: Pick<TokenIssuer, 'issue'>,
    private readonly config: Pick<AuthConfig, 'AUTH_OPERATOR_TENANT'>,
  ) {}

  /**
   * One refresh token buys one access token and the next refresh token. Presenting one
   * that was already exchanged means it was copied: the whole session is revoked.
   */
  async refresh(refreshToken: string) {
    if (!isRefreshTokenShaped(refreshToken)) throw new PalisadeError('unauthenticated', 'invalid refresh token');
    const next = newRefreshToken();
    const outcome = await this.refreshTokens.rotate(hashRefreshToken(refreshToken), next.hash);
    if (outcome.kind === 'reused') {
      await this.userCommands.handle(userStream(outcome.tenantId, outcome.userId), {
        type: 'RevokeSession',
        data: { userId: outcome.userId, sessionId: outcome.sessionId, reason: 'refresh_token_reuse' },
        metadata: { tenantId: outcome.tenantId, actor: { type: 'service', id: 'auth' }, now: new Date() },
      });
      throw new PalisadeError('unauthenticated', 'refresh token was already used: the session is revoked');
    }
    if (outcome.kind === 'invalid') throw new PalisadeError('unauthenticated', 'invalid refresh token');
    const s = outcome.session;
    const { accessToken, expiresIn } = await this.issuer.issue({
      tenantId: s.tenantId,
      subject: s.userId,
      principalType: 'user',
      audience: s.audience,
      scopes: scopesOf(s.roles, s.tenantId === this.config.AUTH_OPERATOR_TENANT),
      sessionId: s.sessionId,
      teams: s.teams,
    });
    return { tokenType: 'Bearer' as const, accessToken, expiresIn, refreshToken: next.token, sessionId: s.sessionId };
  }

  /** Ends the caller's own session: its tokens are refused everywhere within a second. */
  async signOut(principal: Principal): Promise<void> {
    if (principal.type !== 'user' || !principal.sessionId) throw new PalisadeError('validation', 'only a user session can sign out');
    await this.userCommands.handle(userStream(principal.tenantId, principal.id), {
      type: 'SignOut',
      data: { userId: principal.id, sessionId: principal.sessionId },
      metadata: { tenantId: principal.tenantId, actor: { type: 'user', id: principal.id }, now: new Date() },
    });
  }

  /** An administrator revokes one session of their tenant. */
  async revokeSession(admin: Principal, sessionId: string): Promise<void> {
    const session = await this.transactions.inTransaction((tx) => this.sessionsRepo.find(tx, admin.tenantId, sessionId));
    if (!session) throw new PalisadeError('not_found', 'session not found');
    await this.userCommands.handle(userStream(admin.tenantId, session.userId), {
      type: 'RevokeSession',
      data: { userId: session.userId, sessionId, reason: 'admin' },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
  }

  /** An access token for a Palisade service, bound to its client certificate (RFC 8705 cnf x5t#S256). */
  async serviceToken(service: string, audience: string[], scopes: string[], certificateThumbprint: string) {
    const token = await this.issuer.issue({ tenantId: SYSTEM_TENANT, subject: service, principalType: 'service', audience, scopes, certificateThumbprint });
    return { tokenType: 'Bearer', ...token };
  }
}
