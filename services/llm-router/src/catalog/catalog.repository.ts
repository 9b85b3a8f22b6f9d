import type { EventEnvelope } from '@palisade/contracts';
import { toDomainEvent, type InlineProjection, type Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import { catalogDecider, type CatalogState } from './catalog.decider';
import { CATALOG_EVENT_TYPES, type CatalogEvent } from './catalog.events';

/** The only SQL of the catalog context: `catalogs`, one row per tenant holding its folded catalog, kept inline with its events. */
export class CatalogRepository {
  constructor(private readonly dataSource: Pick<DataSource, 'query'>) {}

  async catalog(tenantId: string): Promise<{ state: CatalogState; version: number } | undefined> {
    const rows: Array<{ state: CatalogState; version: number }> = await this.dataSource.query(`SELECT state, version FROM catalogs WHERE tenant_id = $1`, [tenantId]);
    return rows[0];
  }

  /** Folds the new events into the stored catalog in the events' transaction. */
  readonly projection: InlineProjection = {
    name: 'catalogs',
    handles: CATALOG_EVENT_TYPES,
    apply: async (tx: Transaction, events: readonly EventEnvelope[], version: number) => {
      const sql = sqlOf(tx);
      const tenantId = events[0].tenantId;
      const rows: Array<{ state: CatalogState }> = await sql.query(`SELECT state FROM catalogs WHERE tenant_id = $1 FOR UPDATE`, [tenantId]);
      const state = events.reduce((s, e) => catalogDecider.evolve(s, toDomainEvent<CatalogEvent>(e)), rows[0]?.state ?? catalogDecider.initialState());
      await sql.query(
        `INSERT INTO catalogs (tenant_id, state, version, updated_at) VALUES ($1, $2::jsonb, $3, $4)
         ON CONFLICT (tenant_id) DO UPDATE SET state = EXCLUDED.state, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
        [tenantId, JSON.stringify(state), version, events[events.length - 1].occurredAt],
      );
    },
  };
}
