import type { EventEnvelope } from '@palisade/contracts';
import { toDomainEvent, type InlineProjection, type Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import { TENANT_QUOTAS_EVENT_TYPES, type TenantQuotas, type TenantQuotasEvent } from './tenant-quotas.events';

export type TenantQuotasRow = TenantQuotas & {
  status: 'set' | 'removed';
  /** Stream version: the ETag. */
  version: number;
  updatedAt: string;
};

interface Row {
  max_sandboxes: number;
  cpu_seconds: string;
  status: 'set' | 'removed';
  version: number;
  updated_at: Date;
}

/** The only SQL of the tenant quotas context: `sandbox_tenant_quotas`, kept inline with its events. */
export class TenantQuotasRepository {
  constructor(private readonly dataSource: Pick<DataSource, 'query'>) {}

  /** The tenant's setting, removed or not (its version goes on); none if never set. */
  async quotasOf(tenantId: string): Promise<TenantQuotasRow | undefined> {
    const rows: Row[] = await this.dataSource.query(`SELECT max_sandboxes, cpu_seconds, status, version, updated_at FROM sandbox_tenant_quotas WHERE tenant_id = $1`, [tenantId]);
    const r = rows[0];
    return r && { maxSandboxes: r.max_sandboxes, cpuSeconds: Number(r.cpu_seconds), status: r.status, version: r.version, updatedAt: r.updated_at.toISOString() };
  }

  readonly projection: InlineProjection = {
    name: 'sandbox_tenant_quotas',
    handles: TENANT_QUOTAS_EVENT_TYPES,
    apply: async (tx: Transaction, events: readonly EventEnvelope[], version: number) => {
      const sql = sqlOf(tx);
      for (const envelope of events) {
        const event = toDomainEvent<TenantQuotasEvent>(envelope);
        if (event.type === 'sandbox-orchestrator.tenant_quotas.set') {
          await sql.query(
            `INSERT INTO sandbox_tenant_quotas (tenant_id, max_sandboxes, cpu_seconds, status, version, updated_at) VALUES ($1, $2, $3, 'set', $4, $5)
             ON CONFLICT (tenant_id) DO UPDATE SET max_sandboxes = EXCLUDED.max_sandboxes, cpu_seconds = EXCLUDED.cpu_seconds, status = 'set', version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
            [envelope.tenantId, event.data.maxSandboxes, event.data.cpuSeconds, version, envelope.occurredAt],
          );
        } else {
          await sql.query(`UPDATE sandbox_tenant_quotas SET status = 'removed', version = $2, updated_at = $3 WHERE tenant_id = $1`, [envelope.tenantId, version, envelope.occurredAt]);
        }
      }
    },
  };
}
