import { PalisadeError } from '@palisade/contracts';
import type { Transaction } from '@palisade/eventsourcing';
import { ident, sqlOf } from '@palisade/postgres';
import type { BudgetSetData } from './budgets.events';

/** The budgets read model and the limits of their open period accounts: the only SQL of the budgets context. */
export class BudgetsRepository {
  private readonly budgets: string;
  private readonly periods: string;

  constructor(schema: string) {
    this.budgets = `${ident(schema)}.budgets`;
    this.periods = `${ident(schema)}.budget_periods`;
  }

  /** Upserts the budget and moves the limit of its current and future periods; below what is already committed is a conflict. */
  async set(tx: Transaction, tenantId: string, b: BudgetSetData, version: number, now: Date): Promise<void> {
    const sql = sqlOf(tx);
    await sql.query(
      `INSERT INTO ${this.budgets} (budget_id, tenant_id, level, subject_id, limit_micros, period, time_zone, hard, thresholds, version, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (budget_id) DO UPDATE SET limit_micros = excluded.limit_micros, period = excluded.period, time_zone = excluded.time_zone,
         hard = excluded.hard, thresholds = excluded.thresholds, version = excluded.version, updated_at = excluded.updated_at`,
      [b.budgetId, tenantId, b.level, b.subjectId, b.limitMicros, b.period, b.timeZone, b.hard, b.thresholds, version, now],
    );
    try {
      await sql.query(
        `UPDATE ${this.periods} SET limit_micros = $2, hard = $3, thresholds = $4 WHERE budget_id = $1 AND (period_end IS NULL OR period_end > $5)`,
        [b.budgetId, b.limitMicros, b.hard, b.thresholds, now],
      );
    } catch (error) {
      const e = error as { code?: string; constraint?: string };
      if (e.code === '23514' && e.constraint === 'budget_periods_within_limit') {
        throw new PalisadeError('conflict', 'limitMicros: below what this period has already posted and holds; release or wait for the holds first');
      }
      throw error;
    }
  }

  async remove(tx: Transaction, budgetId: string): Promise<void> {
    await sqlOf(tx).query(`DELETE FROM ${this.budgets} WHERE budget_id = $1`, [budgetId]);
  }
}
