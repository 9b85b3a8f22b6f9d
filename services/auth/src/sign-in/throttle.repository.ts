import { createHash } from 'node:crypto';
import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export interface ThrottlePolicy {
  threshold: number;
  baseSec: number;
  maxSec: number;
}

/** Failures older than this no longer count. */
const FORGET_AFTER = '1 hour';

/** Throttle keys are digests: the table holds neither usernames nor addresses. */
export function throttleKey(kind: 'account' | 'address', ...parts: string[]): string {
  return `${kind}:${createHash('sha256').update(parts.join('\u0000')).digest('base64url')}`;
}

/** A key and the policy it is counted under. */
export interface ThrottleClaim {
  key: string;
  policy: ThrottlePolicy;
}

/** What a reservation got: the right to check one credential, or the lock in force. */
export type Reservation =
  | { granted: true; /** Set when this reservation reached the threshold of a key (index into the claims) and locked it. */ lockedNow?: { claim: number; failures: number; lockedUntil: Date } }
  | { granted: false; lockedUntil: Date };

// Computed on the locked existing row (ON CONFLICT), so concurrent attempts on any instance all count.
const NEXT = `CASE WHEN t.last_failure < $2::timestamptz - interval '${FORGET_AFTER}' THEN 1 ELSE t.failures + 1 END`;
const lockAfter = (n: string) => `CASE WHEN ${n} >= $3 THEN $2::timestamptz + make_interval(secs => least($5::float8, $4::float8 * power(2, ${n} - $3))) END`;

/**
 * Failed sign-ins per key in PostgreSQL, so every auth instance sees the same count.
 * From `threshold` failures on, the key is locked for base·2^(failures−threshold)
 * seconds, at most `maxSec`.
 *
 * A password check first reserves its attempt (`reserve`): the attempt counts as a
 * failure before the password is verified, in one statement per key on the key's row,
 * so of N parallel attempts at most `threshold` are granted and the rest see the lock.
 * A credential found good gives its reservation back (`release`).
 */
export class ThrottleRepository {
  /** The latest lock among `keys` that is still in force. */
  async lockedUntil(tx: Transaction, keys: string[], now: Date): Promise<Date | undefined> {
    const rows: Array<{ until: Date | null }> = await sqlOf(tx).query(
      `SELECT max(locked_until) AS until FROM sign_in_throttle WHERE key = ANY($1) AND locked_until > $2`,
      [keys, now],
    );
    return rows[0]?.until ?? undefined;
  }

  /**
   * Count one attempt on every claim, unless one of them is locked: then nothing is
   * counted (the transaction rolls back to before the first claim) and the lock is
   * returned. Claims are taken in the order given: callers pass the account before the
   * address, always, so two reservations never wait on each other in a cycle.
   */
  async reserve(tx: Transaction, claims: readonly ThrottleClaim[], now: Date): Promise<Reservation> {
    const sql = sqlOf(tx);
    await sql.query('SAVEPOINT throttle_reserve');
    let lockedNow: { claim: number; failures: number; lockedUntil: Date } | undefined;
    for (const [i, { key, policy }] of claims.entries()) {
      // The WHERE of ON CONFLICT leaves a locked row as it is (and returns nothing).
      const rows: Array<{ failures: number; locked_until: Date | null }> = await sql.query(
        `INSERT INTO sign_in_throttle AS t (key, failures, locked_until, last_failure)
         VALUES ($1, 1, ${lockAfter('1')}, $2)
         ON CONFLICT (key) DO UPDATE SET failures = ${NEXT}, locked_until = ${lockAfter(NEXT)}, last_failure = $2
           WHERE t.locked_until IS NULL OR t.locked_until <= $2
         RETURNING failures, locked_until`,
        [key, now, policy.threshold, policy.baseSec, policy.maxSec],
      );
      if (rows.length === 0) {
        const [held]: Array<{ locked_until: Date }> = await sql.query(`SELECT locked_until FROM sign_in_throttle WHERE key = $1`, [key]);
        await sql.query('ROLLBACK TO SAVEPOINT throttle_reserve');
        return { granted: false, lockedUntil: held.locked_until };
      }
      if (rows[0].locked_until && !lockedNow) lockedNow = { claim: i, failures: rows[0].failures, lockedUntil: rows[0].locked_until };
    }
    await sql.query('RELEASE SAVEPOINT throttle_reserve');
    return lockedNow ? { granted: true, lockedNow } : { granted: true };
  }

  /**
   * Give a granted reservation back (the credential was good): one failure less on every
   * claim. A lock is lifted when the failures left stay under the threshold, and the lock
   * this reservation set (`locked`: the claim and its time) is lifted in any case.
   */
  async release(tx: Transaction, claims: readonly ThrottleClaim[], locked?: { claim: number; lockedUntil: Date }): Promise<void> {
    for (const [i, { key, policy }] of claims.entries()) {
      await sqlOf(tx).query(
        `UPDATE sign_in_throttle SET failures = greatest(failures - 1, 0),
                locked_until = CASE WHEN failures - 1 < $2 OR locked_until = $3 THEN NULL ELSE locked_until END
          WHERE key = $1`,
        [key, policy.threshold, locked?.claim === i ? locked.lockedUntil : null],
      );
    }
  }

  /** One more failure, counted after the check (second factors: their challenge bounds the attempts). */
  async recordFailure(tx: Transaction, key: string, policy: ThrottlePolicy, now: Date): Promise<{ failures: number; lockedUntil: Date | null; lockedNow: boolean }> {
    const rows: Array<{ failures: number; locked_until: Date | null; locked_now: boolean }> = await sqlOf(tx).query(
      `INSERT INTO sign_in_throttle AS t (key, failures, locked_until, last_failure)
       VALUES ($1, 1, ${lockAfter('1')}, $2)
       ON CONFLICT (key) DO UPDATE SET failures = ${NEXT}, locked_until = ${lockAfter(NEXT)}, last_failure = $2
       RETURNING failures, locked_until, (locked_until IS NOT NULL) AS locked_now`,
      [key, now, policy.threshold, policy.baseSec, policy.maxSec],
    );
    return { failures: rows[0].failures, lockedUntil: rows[0].locked_until, lockedNow: rows[0].locked_now };
  }

  async clear(tx: Transaction, key: string): Promise<void> {
    await sqlOf(tx).query(`DELETE FROM sign_in_throttle WHERE key = $1`, [key]);
  }
}
