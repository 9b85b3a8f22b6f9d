import { buildEvent, newEventId, PalisadeError, type Actor, type EventFactoryContext } from '@palisade/contracts';
import type { EventStore } from '@palisade/eventsourcing';
import { isTimeZone, periodOf } from '../budgets/budgets.decider';
import type { UsageExported } from './reports.events';
import { focusCsv, usageCsv, usageJson } from './reports.format';
import type { Group, ReportsRepository } from './reports.repository';

export interface UsageQuery {
  from: Date;
  to: Date;
  groupBy: Group[];
  timeZone: string;
  format: 'json' | 'csv' | 'focus';
}

const MAX_RANGE_MS = 400 * 86_400_000;

/**
 * Usage and cost by tenant, team, agent, model and day from the usage lines, as JSON, CSV
 * or FinOps FOCUS. Every report leaves the service only after its `billing.usage.exported`
 * event committed (an audited data export).
 */
export class ReportsService {
  constructor(
    private readonly repo: Pick<ReportsRepository, 'usageBy'>,
    private readonly store: EventStore,
    private readonly eventContext: EventFactoryContext,
    private readonly currency: string,
  ) {}

  async usage(tenantId: string, actor: Actor, q: UsageQuery): Promise<{ contentType: string; body: unknown }> {
    if (!isTimeZone(q.timeZone)) throw new PalisadeError('validation', 'timeZone: not an IANA time zone');
    if (!(q.from < q.to) || q.to.getTime() - q.from.getTime() > MAX_RANGE_MS) throw new PalisadeError('validation', 'from, to: from before to, at most 400 days apart');
    const groupBy: Group[] = q.format === 'focus' ? ['day', 'team', 'agent', 'model'] : q.groupBy;
    const rows = await this.repo.usageBy(tenantId, q.from, q.to, groupBy, q.timeZone);
    const exportId = newEventId();
    const event: UsageExported = {
      type: 'billing.usage.exported',
      data: { exportId, format: q.format, from: q.from.toISOString(), to: q.to.toISOString(), groupBy, rows: rows.length },
    };
    const envelope = buildEvent(this.eventContext, { ...event, tenantId, actor });
    await this.store.inTransaction((tx) => this.store.appendToStream(tx, `export-${tenantId}.${exportId}`, [envelope], 0));
    if (q.format === 'json') return { contentType: 'application/json', body: { from: event.data.from, to: event.data.to, groupBy, rows: usageJson(rows) } };
    if (q.format === 'csv') return { contentType: 'text/csv; charset=utf-8', body: usageCsv(rows) };
    const day = (d: string) => {
      const [y, m, dd] = d.split('-').map(Number);
      const noon = new Date(Date.UTC(y, m - 1, dd, 12));
      const w = periodOf(noon, 'day', q.timeZone);
      return { start: w.start, end: w.end! };
    };
    return { contentType: 'text/csv; charset=utf-8', body: focusCsv(rows, this.currency, day) };
  }
}
