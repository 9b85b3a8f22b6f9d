import type { EventEnvelope } from '@palisade/contracts';
import { toDomainEvent, type InlineProjection, type Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import { EGRESS_RULES_EVENT_TYPES, type EgressRulesEvent } from './egress-rules.events';
import type { EgressRule } from './egress.rules';

export interface EgressRuleSetRow {
  tenantId: string;
  scope: string;
  rules: EgressRule[];
  status: 'set' | 'removed';
  /** Stream version: the ETag. */
  version: number;
  updatedAt: string;
}

interface Row {
  tenant_id: string;
  scope: string;
  rules: EgressRule[];
  status: 'set' | 'removed';
  version: number;
  updated_at: Date;
}

const COLUMNS = 'tenant_id, scope, rules, status, version, updated_at';

function rowOf(r: Row): EgressRuleSetRow {
  return { tenantId: r.tenant_id, scope: r.scope, rules: r.rules, status: r.status, version: r.version, updatedAt: r.updated_at.toISOString() };
}

/** The only SQL of the egress rules context: the `egress_rule_sets` read model, kept inline with its events. */
export class EgressRulesRepository {
  constructor(private readonly dataSource: Pick<DataSource, 'query'>) {}

  /** The rule set of the scope, removed or not (its version goes on). */
  async ruleSet(tenantId: string, scope: string): Promise<EgressRuleSetRow | undefined> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM egress_rule_sets WHERE tenant_id = $1 AND scope = $2`, [tenantId, scope]);
    return rows[0] && rowOf(rows[0]);
  }

  /** The tenant's rule sets in force, by scope. */
  async ruleSets(tenantId: string): Promise<EgressRuleSetRow[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM egress_rule_sets WHERE tenant_id = $1 AND status = 'set' ORDER BY scope`, [tenantId]);
    return rows.map(rowOf);
  }

  /** The rules in force of these scopes of the tenant (a scope without a set is absent). */
  async rulesOf(tenantId: string, scopes: readonly string[]): Promise<Map<string, EgressRule[]>> {
    const rows: Array<Pick<Row, 'scope' | 'rules'>> = await this.dataSource.query(`SELECT scope, rules FROM egress_rule_sets WHERE tenant_id = $1 AND scope = ANY($2::text[]) AND status = 'set'`, [tenantId, [...scopes]]);
    return new Map(rows.map((r) => [r.scope, r.rules]));
  }

  /** Keeps `egress_rule_sets` in the transaction of the rule set's events. */
  readonly projection: InlineProjection = {
    name: 'egress_rule_sets',
    handles: EGRESS_RULES_EVENT_TYPES,
    apply: async (tx: Transaction, events: readonly EventEnvelope[], version: number) => {
      const sql = sqlOf(tx);
      for (const envelope of events) {
        const event = toDomainEvent<EgressRulesEvent>(envelope);
        switch (event.type) {
          case 'sandbox-orchestrator.egress_rules.set':
            await sql.query(
              `INSERT INTO egress_rule_sets (tenant_id, scope, rules, status, version, updated_at) VALUES ($1, $2, $3::jsonb, 'set', $4, $5)
               ON CONFLICT (tenant_id, scope) DO UPDATE SET rules = EXCLUDED.rules, status = 'set', version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
              [envelope.tenantId, event.data.scope, JSON.stringify(event.data.rules), version, envelope.occurredAt],
            );
            break;
          case 'sandbox-orchestrator.egress_rules.removed':
            await sql.query(`UPDATE egress_rule_sets SET rules = '[]'::jsonb, status = 'removed', version = $3, updated_at = $4 WHERE tenant_id = $1 AND scope = $2`, [
              envelope.tenantId,
              event.data.scope,
              version,
              envelope.occurredAt,
            ]);
            break;
        }
      }
    },
  };
}
