import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { pgPoolOf, sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import { USER_TEAMS_SQL } from '../teams/teams.repository';

/**
 * What rotate needs of node-postgres (the pool under TypeORM's driver, `pgPoolOf`): named
 * statements, prepared once per connection, which TypeORM's query() cannot name.
 */
interface StatementPool {
  query<R>(statement: { name: string; text: string; values: unknown[] }): Promise<{ rows: R[] }>;
}

export interface LiveSession {
  sessionId: string;
  tenantId: string;
  userId: string;
  audience: string[];
  mfa: boolean;
  roles: string[];
  /** The user's live teams, department first (tokens carry them). */
  teams: string[];
}

export type RefreshOutcome = { kind: 'rotated'; session: LiveSession } | { kind: 'reused'; sessionId: string; tenantId: string; userId: string } | { kind: 'invalid' };

export class SessionsRepository {
  async open(
    tx: Transaction,
    s: { sessionId: string; tenantId: string; userId: string; audience: string[]; mfa: boolean; createdAt: Date; expiresAt: Date },
    refreshTokenHash: Buffer,
  ): Promise<void> {
    const sql = sqlOf(tx);
    await sql.query(`INSERT INTO sessions (id, tenant_id, user_id, audience, mfa, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      s.sessionId,
      s.tenantId,
      s.userId,
      s.audience,
      s.mfa,
      s.createdAt,
      s.expiresAt,
    ]);
    await sql.query(`INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)`, [refreshTokenHash, s.sessionId]);
  }

  /**
   * Exchange a refresh token for the next one, in one statement: the old one is marked
   * used, and the new one stored, only while the session and its user are live. A token
   * that was already used is reported as reuse (the caller revokes the family).
   *
   * No transaction around it (the hot path of every client): the statement is atomic by
   * itself, so BEGIN and COMMIT would only add round trips. Both statements are prepared
   * once per connection, which spares PostgreSQL planning them at every exchange.
   *
   * Two exchanges of one token: the row lock makes the second UPDATE wait for the first
   * to commit, then find the token used; its reuse check, a statement of its own, sees
   * that commit. So exactly one wins and the other reports reuse.
   */
  async rotate(db: DataSource, oldHash: Buffer, newHash: Buffer): Promise<RefreshOutcome> {
    const pool = pgPoolOf<StatementPool>(db);
    const { rows } = await pool.query<{ id: string; tenant_id: string; user_id: string; audience: string[]; mfa: boolean; roles: string[]; teams: string[] }>({
      name: 'auth.sessions.rotate',
      text: `WITH used AS (
         UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL RETURNING session_id
       ), live AS (
         SELECT s.id, s.tenant_id, s.user_id, s.audience, s.mfa, u.roles, ${USER_TEAMS_SQL('s.tenant_id', 's.user_id')} AS teams
           FROM sessions s JOIN used ON used.session_id = s.id
           JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
          WHERE s.ended_at IS NULL AND s.expires_at > now() AND u.status = 'active'
       ), fresh AS (
         INSERT INTO refresh_tokens (token_hash, session_id) SELECT $2, id FROM live RETURNING session_id
       )
       SELECT live.* FROM live JOIN fresh ON fresh.session_id = live.id`,
      values: [oldHash, newHash],
    });
    const r = rows[0];
    if (r) return { kind: 'rotated', session: { sessionId: r.id, tenantId: r.tenant_id, userId: r.user_id, audience: r.audience, mfa: r.mfa, roles: r.roles, teams: r.teams } };
    const previous = await pool.query<{ session_id: string; tenant_id: string; user_id: string; ended_at: Date | null }>({
      name: 'auth.sessions.rotate-reuse',
      text: `SELECT r.session_id, s.tenant_id, s.user_id, s.ended_at FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
              WHERE r.token_hash = $1 AND r.used_at IS NOT NULL`,
      values: [oldHash],
    });
    const p = previous.rows[0];
    if (p && p.ended_at === null) return { kind: 'reused', sessionId: p.session_id, tenantId: p.tenant_id, userId: p.user_id };
    return { kind: 'invalid' };
  }

  async find(tx: Transaction, tenantId: string, sessionId: string): Promise<{ userId: string; endedAt: Date | null } | undefined> {
    const rows: Array<{ user_id: string; ended_at: Date | null }> = await sqlOf(tx).query(`SELECT user_id, ended_at FROM sessions WHERE tenant_id = $1 AND id = $2`, [
      tenantId,
      sessionId,
    ]);
    return rows[0] && { userId: rows[0].user_id, endedAt: rows[0].ended_at };
  }
}

/** Ends sessions when they are signed out or revoked (one, or every session of a user). */
export class SessionsProjection implements InlineProjection {
  readonly name = 'sessions';
  readonly handles = ['auth.user.signed-out', 'auth.user.session-revoked', 'auth.user.sessions-revoked', 'auth.user.disabled'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as Record<string, string>;
      if (e.type === 'auth.user.signed-out' || e.type === 'auth.user.session-revoked') {
        await sql.query(`UPDATE sessions SET ended_at = $3 WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL`, [e.tenantId, d.sessionId, e.occurredAt]);
      } else {
        await sql.query(`UPDATE sessions SET ended_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND ended_at IS NULL`, [e.tenantId, d.userId, e.occurredAt]);
      }
    }
  }
}
