import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import type { SealedAnswer } from './held-answers.service';

/**
 * The only SQL of held answers: `held_answers`, one row per answer held for review, with
 * the answer as the caller would have received it, sealed (AES-256-GCM) under a key only
 * the caller was given (personal data of the acting user: never logged, never in an event). Written with the `held` event, deleted with the
 * `released` or `expired` one, in the same transaction; every query names the tenant.
 */
export class HeldAnswersRepository {
  constructor(private readonly dataSource: Pick<DataSource, 'query'>) {}

  async insert(tx: Transaction, row: { tenantId: string; heldId: string; api: string; body: SealedAnswer; expiresAt: string }): Promise<void> {
    await sqlOf(tx).query(`INSERT INTO held_answers (tenant_id, held_id, api, body, expires_at) VALUES ($1, $2, $3, $4::jsonb, $5)`, [row.tenantId, row.heldId, row.api, JSON.stringify(row.body), row.expiresAt]);
  }

  /** The sealed answer, if it is still held. */
  async peek(tenantId: string, heldId: string): Promise<SealedAnswer | undefined> {
    const rows: Array<{ body: SealedAnswer }> = await this.dataSource.query(`SELECT body FROM held_answers WHERE tenant_id = $1 AND held_id = $2`, [tenantId, heldId]);
    return rows[0]?.body;
  }

  /** Deletes the row and answers the sealed answer it held (undefined when there is none). */
  async take(tx: Transaction, tenantId: string, heldId: string): Promise<SealedAnswer | undefined> {
    // in a CTE: TypeORM answers a bare DELETE … RETURNING with [rows, count]
    const rows: Array<{ body: SealedAnswer }> = await sqlOf(tx).query(`WITH d AS (DELETE FROM held_answers WHERE tenant_id = $1 AND held_id = $2 RETURNING body) SELECT body FROM d`, [tenantId, heldId]);
    return rows[0]?.body;
  }

  /** Held answers past their expiry (oldest first), for the sweeper. */
  async expired(now: Date, limit: number): Promise<Array<{ tenantId: string; heldId: string }>> {
    const rows: Array<{ tenant_id: string; held_id: string }> = await this.dataSource.query(`SELECT tenant_id, held_id FROM held_answers WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`, [now.toISOString(), limit]);
    return rows.map((r) => ({ tenantId: r.tenant_id, heldId: r.held_id }));
  }
}
