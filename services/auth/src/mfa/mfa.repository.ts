import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { SignInMethod } from '../users/users.events';

export type ChallengePurpose = 'verify' | 'enrol';

export interface Challenge {
  tenantId: string;
  userId: string;
  purpose: ChallengePurpose;
  audience: string[];
  /** The sign-in this challenge continues. */
  method: SignInMethod;
  attempts: number;
}

/** UPDATE … RETURNING statements are wrapped in a CTE: TypeORM answers a bare UPDATE with [rows, count]. */
export class MfaRepository {
  /** A new pending secret replaces any earlier pending one; an active one is left alone. */
  async savePending(tx: Transaction, tenantId: string, userId: string, sealed: Buffer): Promise<boolean> {
    const rows: unknown[] = await sqlOf(tx).query(
      `INSERT INTO mfa_totp (tenant_id, user_id, secret_sealed, status) VALUES ($1, $2, $3, 'pending')
       ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret_sealed = $3, last_step = NULL, created_at = now() WHERE mfa_totp.status = 'pending'
       RETURNING user_id`,
      [tenantId, userId, sealed],
    );
    return rows.length === 1;
  }

  async totp(tx: Transaction, tenantId: string, userId: string): Promise<{ sealed: Buffer; status: 'pending' | 'active'; lastStep: number | null } | undefined> {
    const rows: Array<{ secret_sealed: Buffer; status: 'pending' | 'active'; last_step: string | null }> = await sqlOf(tx).query(
      `SELECT secret_sealed, status, last_step FROM mfa_totp WHERE tenant_id = $1 AND user_id = $2`,
      [tenantId, userId],
    );
    const r = rows[0];
    return r && { sealed: r.secret_sealed, status: r.status, lastStep: r.last_step === null ? null : Number(r.last_step) };
  }

  /** Records the time step of an accepted code; false if that step (or a later one) was used already: a replay. */
  async useStep(tx: Transaction, tenantId: string, userId: string, step: number): Promise<boolean> {
    const rows: unknown[] = await sqlOf(tx).query(
      `WITH u AS (UPDATE mfa_totp SET last_step = $3 WHERE tenant_id = $1 AND user_id = $2 AND (last_step IS NULL OR last_step < $3) RETURNING user_id) SELECT * FROM u`,
      [tenantId, userId, step],
    );
    return rows.length === 1;
  }

  /** In the transaction of auth.user.mfa-enrolled: the pending secret becomes active, with fresh recovery codes. */
  async activate(tx: Transaction, tenantId: string, userId: string, recoveryCodeHashes: Buffer[]): Promise<void> {
    const sql = sqlOf(tx);
    await sql.query(`UPDATE mfa_totp SET status = 'active' WHERE tenant_id = $1 AND user_id = $2 AND status = 'pending'`, [tenantId, userId]);
    await sql.query(`DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2`, [tenantId, userId]);
    for (const hash of recoveryCodeHashes) {
      await sql.query(`INSERT INTO mfa_recovery_codes (tenant_id, user_id, code_hash) VALUES ($1, $2, $3)`, [tenantId, userId, hash]);
    }
  }

  async unusedRecoveryCodes(tx: Transaction, tenantId: string, userId: string): Promise<Buffer[]> {
    const rows: Array<{ code_hash: Buffer }> = await sqlOf(tx).query(
      `SELECT code_hash FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL`,
      [tenantId, userId],
    );
    return rows.map((r) => r.code_hash);
  }

  /** Marks a recovery code used, once: false if another request used it first. */
  async consumeRecoveryCode(tx: Transaction, tenantId: string, userId: string, hash: Buffer): Promise<boolean> {
    const rows: unknown[] = await sqlOf(tx).query(
      `WITH u AS (UPDATE mfa_recovery_codes SET used_at = now() WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 AND used_at IS NULL RETURNING user_id) SELECT * FROM u`,
      [tenantId, userId, hash],
    );
    return rows.length === 1;
  }

  async createChallenge(tx: Transaction, tokenHash: Buffer, c: Omit<Challenge, 'attempts'>, expiresAt: Date): Promise<void> {
    const sql = sqlOf(tx);
    await sql.query(`DELETE FROM mfa_challenges WHERE expires_at < now() - interval '1 hour'`);
    await sql.query(`INSERT INTO mfa_challenges (token_hash, tenant_id, user_id, purpose, audience, method, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      tokenHash,
      c.tenantId,
      c.userId,
      c.purpose,
      c.audience,
      c.method,
      expiresAt,
    ]);
  }

  /** A live challenge of this purpose, counting this attempt; undefined when unknown, expired, used or out of attempts. */
  async attemptChallenge(tx: Transaction, tokenHash: Buffer, purpose: ChallengePurpose, maxAttempts: number, now: Date): Promise<Challenge | undefined> {
    const rows: Array<{ tenant_id: string; user_id: string; purpose: ChallengePurpose; audience: string[]; method: SignInMethod; attempts: number }> = await sqlOf(tx).query(
      `WITH u AS (
         UPDATE mfa_challenges SET attempts = attempts + 1
          WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 AND attempts < $4
          RETURNING tenant_id, user_id, purpose, audience, method, attempts
       ) SELECT * FROM u`,
      [tokenHash, purpose, now, maxAttempts],
    );
    const r = rows[0];
    return r && { tenantId: r.tenant_id, userId: r.user_id, purpose: r.purpose, audience: r.audience, method: r.method, attempts: r.attempts };
  }

  /** Single use: false when it was used already. */
  async completeChallenge(tx: Transaction, tokenHash: Buffer): Promise<boolean> {
    const rows: unknown[] = await sqlOf(tx).query(
      `WITH u AS (UPDATE mfa_challenges SET used_at = now() WHERE token_hash = $1 AND used_at IS NULL RETURNING tenant_id) SELECT * FROM u`,
      [tokenHash],
    );
    return rows.length === 1;
  }
}

/** Keeps `users.mfa_enrolled` in step; a reset drops the secret and the recovery codes. */
export class MfaProjection implements InlineProjection {
  readonly name = 'mfa';
  readonly handles = ['auth.user.mfa-enrolled', 'auth.user.mfa-reset'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const userId = (e.data as { userId: string }).userId;
      if (e.type === 'auth.user.mfa-enrolled') {
        await sql.query(`UPDATE users SET mfa_enrolled = true WHERE tenant_id = $1 AND id = $2`, [e.tenantId, userId]);
      } else {
        await sql.query(`UPDATE users SET mfa_enrolled = false WHERE tenant_id = $1 AND id = $2`, [e.tenantId, userId]);
        await sql.query(`DELETE FROM mfa_totp WHERE tenant_id = $1 AND user_id = $2`, [e.tenantId, userId]);
        await sql.query(`DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2`, [e.tenantId, userId]);
      }
    }
  }
}
