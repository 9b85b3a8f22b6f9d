import { isSealedPersonal, PalisadeError, type EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export interface UserRow {
  tenantId: string;
  id: string;
  username: string;
  status: 'active' | 'disabled';
  roles: string[];
  passwordHash: string | null;
  mfaEnrolled: boolean;
}

interface Row {
  tenant_id: string;
  id: string;
  username: string;
  status: 'active' | 'disabled';
  roles: string[];
  password_hash: string | null;
  mfa_enrolled: boolean;
}

const toUser = (r: Row): UserRow => ({ tenantId: r.tenant_id, id: r.id, username: r.username, status: r.status, roles: r.roles, passwordHash: r.password_hash, mfaEnrolled: r.mfa_enrolled });
const COLUMNS = 'tenant_id, id, username, status, roles, password_hash, mfa_enrolled';

/** The unique constraints of `users` and the field each one protects. */
const UNIQUE_FIELDS: Record<string, string> = { users_tenant_id_username_key: 'username', users_pkey: 'userId' };

/**
 * A unique violation on `users` is a conflict naming the field (409): two registrations
 * of one username raced past the check before the insert. Only the field is told: never
 * the value, the statement or its parameters (the driver error carries all three).
 */
function conflictOf(error: unknown): PalisadeError | undefined {
  const pg = error as { code?: string; constraint?: string };
  const field = pg.code === '23505' && pg.constraint ? UNIQUE_FIELDS[pg.constraint] : undefined;
  return field ? new PalisadeError('conflict', `${field} is taken`, { field }) : undefined;
}

/** Usernames compare case-insensitively. */
export const normalizeUsername = (username: string) => username.normalize('NFKC').toLowerCase();

export class UsersRepository {
  /**
   * Commands on one user's stream wait for each other (a lock held until the transaction
   * ends) instead of racing to append and failing with a concurrency error.
   */
  async lockStream(tx: Transaction, streamId: string): Promise<void> {
    await sqlOf(tx).query(`SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || $1, 0))`, [streamId]);
  }

  async findByUsername(tx: Transaction, tenantId: string, username: string): Promise<UserRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM users WHERE tenant_id = $1 AND username = $2`, [tenantId, normalizeUsername(username)]);
    return rows[0] && toUser(rows[0]);
  }

  async findById(tx: Transaction, tenantId: string, userId: string): Promise<UserRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM users WHERE tenant_id = $1 AND id = $2`, [tenantId, userId]);
    return rows[0] && toUser(rows[0]);
  }

  /** The tenants holding a user with this id (one, or none; `tenantId` narrows the search to it). */
  async tenantsOfUser(tx: Transaction, userId: string, tenantId?: string): Promise<string[]> {
    const rows: Array<{ tenant_id: string }> = tenantId
      ? await sqlOf(tx).query(`SELECT tenant_id FROM users WHERE id = $1 AND tenant_id = $2`, [userId, tenantId])
      : await sqlOf(tx).query(`SELECT tenant_id FROM users WHERE id = $1`, [userId]);
    return rows.map((r) => r.tenant_id);
  }

  async list(tx: Transaction, tenantId: string): Promise<UserRow[]> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY username LIMIT 1000`, [tenantId]);
    return rows.map(toUser);
  }

  /** The newest `limit` password hashes of a user, current one first. */
  async passwordHistory(tx: Transaction, tenantId: string, userId: string, limit: number): Promise<string[]> {
    const rows: Array<{ hash: string }> = await sqlOf(tx).query(
      `SELECT hash FROM password_history WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC LIMIT $3`,
      [tenantId, userId, limit],
    );
    return rows.map((r) => r.hash);
  }

  /** Store a new password hash (never in an event) and keep the history to `keep` entries. */
  async setPasswordHash(tx: Transaction, tenantId: string, userId: string, hash: string, keep: number): Promise<void> {
    const sql = sqlOf(tx);
    await sql.query(`UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2`, [tenantId, userId, hash]);
    await sql.query(`INSERT INTO password_history (tenant_id, user_id, hash) VALUES ($1, $2, $3)`, [tenantId, userId, hash]);
    await sql.query(
      `DELETE FROM password_history WHERE tenant_id = $1 AND user_id = $2 AND ctid NOT IN (
         SELECT ctid FROM password_history WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC LIMIT $3)`,
      [tenantId, userId, Math.max(1, keep)],
    );
  }

  /** A stronger hash of the same password (parameters raised): not a password change. */
  async rehash(tx: Transaction, tenantId: string, userId: string, hash: string): Promise<void> {
    await sqlOf(tx).query(`UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2`, [tenantId, userId, hash]);
  }
}

/** What an erased user's name becomes in `users`. */
export const erasedUsername = (userId: string) => `~erased:${userId}`;

/** Keeps `users` in step with auth.user.* events (the username comes from `personal`). */
export class UsersProjection implements InlineProjection {
  readonly name = 'users';
  readonly handles = ['auth.user.registered', 'auth.user.password-changed', 'auth.user.disabled', 'auth.user.sessions-revoked', 'auth.user.roles-changed', 'auth.user.erased'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as Record<string, unknown>;
      if (e.type === 'auth.user.registered') {
        // the command handler projects the decided events before the store seals `personal`
        if (isSealedPersonal(e.personal)) throw new PalisadeError('internal', 'a registration reached the users projection sealed');
        const username = normalizeUsername(String(e.personal?.data.username ?? ''));
        await sql.query(`INSERT INTO users (tenant_id, id, username, status, roles) VALUES ($1, $2, $3, 'active', $4)`, [e.tenantId, d.userId, username, d.roles]).catch((error: unknown) => {
          throw conflictOf(error) ?? error;
        });
      } else if (e.type === 'auth.user.password-changed') {
        await sql.query(`UPDATE users SET password_expires_at = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.userId, d.expiresAt]);
      } else if (e.type === 'auth.user.roles-changed') {
        await sql.query(`UPDATE users SET roles = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.userId, d.roles]);
      } else if (e.type === 'auth.user.erased') {
        // The name goes (a placeholder no one can register: ":" is reserved, no provider id starts with "~"), and every password hash.
        await sql.query(`UPDATE users SET username = $3, status = 'disabled', password_hash = NULL WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.userId, erasedUsername(String(d.userId))]);
        await sql.query(`DELETE FROM password_history WHERE tenant_id = $1 AND user_id = $2`, [e.tenantId, d.userId]);
      } else if (e.type === 'auth.user.disabled') {
        await sql.query(`UPDATE users SET status = 'disabled' WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.userId]);
      } else {
        await sql.query(`UPDATE users SET sessions_revoked_at = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.userId, d.at]);
      }
    }
  }
}
