import { ident } from '@palisade/postgres';
import type { DataSource } from 'typeorm';

export const GROUPS = ['team', 'agent', 'model', 'day'] as const;
export type Group = (typeof GROUPS)[number];

export interface UsageRow {
  day: string | null;
  teamId: string | null;
  agentId: string | null;
  model: string | null;
  requests: number;
  postedMicros: bigint;
  actualMicros: bigint;
  overrunMicros: bigint;
}

const COLUMNS: Record<Group, string> = {
  team: 'team_id',
  agent: 'agent_id',
  model: 'model',
  day: `to_char(occurred_at AT TIME ZONE $4, 'YYYY-MM-DD')`,
};

/** Usage lines summed by tenant and the chosen groups, over [from, to): the reports' only SQL. */
export class ReportsRepository {
  private readonly usage: string;

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
  ) {
    this.usage = `${ident(schema)}.usage_lines`;
  }

  async usageBy(tenantId: string, from: Date, to: Date, groupBy: readonly Group[], timeZone: string): Promise<UsageRow[]> {
    const cols = GROUPS.map((g) => (groupBy.includes(g) ? `${COLUMNS[g]} AS ${g}` : `NULL::text AS ${g}`));
    const keys = GROUPS.filter((g) => groupBy.includes(g));
    const rows: Array<Record<string, unknown>> = await this.dataSource.query(
      `SELECT ${cols.join(', ')}, count(*) FILTER (WHERE revision = 0)::int AS requests, count(*)::int AS lines,
              sum(posted_micros)::text AS posted, sum(actual_micros)::text AS actual,
              sum(overrun_micros)::text AS overrun
         FROM ${this.usage}
        WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND $4::text IS NOT NULL
        ${keys.length > 0 ? `GROUP BY ${keys.map((g) => COLUMNS[g]).join(', ')} ORDER BY ${keys.map((g) => COLUMNS[g]).join(', ')}` : ''}`,
      [tenantId, from, to, timeZone],
    );
    return rows
      // corrections (revision > 0) add their differences to the sums, not to the requests
      .filter((r) => r.lines !== 0)
      .map((r) => ({
        day: (r.day as string | null) ?? null,
        teamId: (r.team as string | null) ?? null,
        agentId: (r.agent as string | null) ?? null,
        model: (r.model as string | null) ?? null,
        requests: r.requests as number,
        postedMicros: BigInt((r.posted as string | null) ?? '0'),
        actualMicros: BigInt((r.actual as string | null) ?? '0'),
        overrunMicros: BigInt((r.overrun as string | null) ?? '0'),
      }));
  }
}
