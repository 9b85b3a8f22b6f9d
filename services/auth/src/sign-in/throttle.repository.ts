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

/**
 * Failed sign-ins per key in PostgreSQL, so every auth instance sees the same count.
 * From `threshold` failures on, the key is locked for base·2^(failures−threshold)
 * seconds, at most `maxSec`.
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

  async recordFailure(tx: Transaction, key: string, policy: ThrottlePolicy, now: Date): Promise<{ failures: number; lockedUntil: Date | null; lockedNow: boolean }> {
    // Computed on the locked existing row (ON CONFLICT), so concurrent failures on any instance all count.
    const next = `CASE WHEN t.last_failure < $2::timestamptz - interval '${FORGET_AFTER}' THEN 1 ELSE t.failures + 1 END`;
    const lock = (n: string) => `CASE WHEN ${n} >= $3 THEN $2::timestamptz + make_interval(secs => least($5::float8, $4::float8 * power(2, ${n} - $3))) END`;
    const rows: Array<{ failures: number; locked_until: Date | null; locked_now: boolean }> = await sqlOf(tx).query(
      `INSERT INTO sign_in_throttle AS t (key, failures, locked_until, last_failure)
       VALUES ($1, 1, ${lock('1')}, $2)
       ON CONFLICT (key) DO UPDATE SET failures = ${next}, locked_until = ${lock(next)}, last_failure = $2
       RETURNING failures, locked_until, (locked_until IS NOT NULL) AS locked_now`,
      [key, now, policy.threshold, policy.baseSec, policy.maxSec],
    );
    return { failures: rows[0].failures, lockedUntil: rows[0].locked_until, lockedNow: rows[0].locked_now };
  }

  async clear(tx: Transaction, key: string): Promise<void> {
    await sqlOf(tx).query(`DELETE FROM sign_in_throttle WHERE key = $1`, [key]);
  }
}
