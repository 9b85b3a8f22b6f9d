import type { Transaction } from '@palisade/eventsourcing';
import { ident, sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import type { PriceTable } from './prices.decider';
import type { PriceEntry, PriceTablePublished } from './prices.events';

/** Price tables (read model of `price-table-<scope>`): the only SQL of the prices context. */
export class PricesRepository {
  private readonly tables: string;

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
  ) {
    this.tables = `${ident(schema)}.price_tables`;
  }

  async project(tx: Transaction, d: PriceTablePublished['data'], now: Date): Promise<void> {
    await sqlOf(tx).query(`INSERT INTO ${this.tables} (tenant_id, version, effective_from, currency, entries, published_at) VALUES ($1, $2, $3, $4, $5, $6)`, [
      d.scope,
      d.version,
      d.effectiveFrom,
      d.currency,
      JSON.stringify(d.entries),
      now,
    ]);
  }

  /** The table in force at `at` for the tenant: its own latest effective version, else the platform's (`fallback`). */
  async effective(tenantId: string, fallback: string, at: Date): Promise<PriceTable | undefined> {
    const rows: Array<Record<string, unknown>> = await this.dataSource.query(
      `SELECT * FROM ${this.tables} WHERE tenant_id IN ($1, $2) AND effective_from <= $3
        ORDER BY (tenant_id = $1) DESC, effective_from DESC, version DESC LIMIT 1`,
      [tenantId, fallback, at],
    );
    const r = rows[0];
    if (!r) return undefined;
    return { scope: r.tenant_id as string, version: r.version as number, effectiveFrom: r.effective_from as Date, currency: r.currency as string, entries: r.entries as PriceEntry[] };
  }
}
