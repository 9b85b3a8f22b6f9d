import type { AuditRecord } from '@palisade/audit-log';
import type { Principal } from '@palisade/contracts';
import type { AuditEvents, Transactions } from '../audit.events';
import { actionClassOf } from '../coverage/action-classes';
import type { PersonalData } from '../subjects/personal-data';
import { readAccessOf } from './access';
import { csvHeader, csvLines } from './csv-format';
import type { EventsQuery, ExportQuery } from './query.dto';
import { decodeCursor, encodeCursor, type QueryRepository, type RecordFilter } from './query.repository';

export interface EventsPage {
  items: Array<Omit<AuditRecord, 'event'> & { actionClass: string; event: AuditRecord['event'] }>;
  nextCursor: string | null;
}

/** An export: what to answer with, and its body in chunks (read page by page from the index). */
export interface Export {
  contentType: string;
  filename: string;
  chunks: AsyncIterable<string>;
}

const EXPORT_PAGE = 2000;

/**
 * Queries and exports of the audit log, served from the record index in PostgreSQL
 * (rebuildable from the topic). A tenant's auditors (audit:read) see their tenant only;
 * a platform auditor (audit:read:all) every tenant. Every query and export is itself an
 * audited event (class data_export).
 */
export class QueryService {
  constructor(
    private readonly transactions: Transactions,
    private readonly repository: Pick<QueryRepository, 'page'>,
    private readonly personal: Pick<PersonalData, 'openAll'>,
    private readonly events: Pick<AuditEvents, 'record'>,
    private readonly topic: string,
  ) {}

  /** One page of records, `personal` opened (or read back as erased). */
  async list(principal: Principal, q: EventsQuery): Promise<EventsPage> {
    const filter = filterOf(principal, q);
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    await this.events.record(principal, 'audit.events.queried', { filter: describeFilter(filter), cursor: q.cursor !== undefined });
    const rows = await this.transactions.inTransaction((tx) => this.repository.page(tx, this.topic, filter, after, q.limit, 'time'));
    const records = rows.map((r) => JSON.parse(r.value) as AuditRecord);
    const opened = await this.personal.openAll(records.map((r) => r.event));
    const items = records.map((r, i) => {
      const event = { ...r.event };
      if (opened[i] !== undefined) event.personal = opened[i];
      return { ...r, actionClass: actionClassOf(r.event.type), event };
    });
    return { items, nextCursor: rows.length === q.limit ? encodeCursor(rows[rows.length - 1]) : null };
  }

  /**
   * NDJSON (the raw records, partition by partition in seq order: `palisade audit verify
   * --file` checks them) or CSV (csv-format.ts). The export is audited before anything is read.
   */
  async export(principal: Principal, q: ExportQuery): Promise<Export> {
    const filter = filterOf(principal, q);
    await this.events.record(principal, 'audit.events.exported', { filter: describeFilter(filter), format: q.format, limit: q.limit });
    return {
      contentType: q.format === 'ndjson' ? 'application/x-ndjson; charset=utf-8' : 'text/csv; charset=utf-8',
      filename: `audit-export.${q.format}`,
      chunks: this.exportChunks(filter, q.format, q.limit),
    };
  }

  private async *exportChunks(filter: RecordFilter, format: ExportQuery['format'], limit: number): AsyncGenerator<string> {
    if (format === 'csv') yield csvHeader();
    let after: { partition: number; seq: number } | undefined;
    let written = 0;
    while (written < limit) {
      const rows = await this.transactions.inTransaction((tx) => this.repository.page(tx, this.topic, filter, after, Math.min(EXPORT_PAGE, limit - written), 'chain'));
      if (rows.length === 0) break;
      yield format === 'ndjson' ? rows.map((r) => `${r.value}\n`).join('') : csvLines(rows.map((r) => JSON.parse(r.value) as AuditRecord));
      written += rows.length;
      after = { partition: rows[rows.length - 1].partition, seq: rows[rows.length - 1].seq };
    }
  }
}

function filterOf(principal: Principal, q: Omit<EventsQuery, 'cursor' | 'limit'>): RecordFilter {
  const access = readAccessOf(principal, q.tenant);
  return {
    tenantId: access.tenantId,
    ...(access.nothing ? { nothing: true as const } : {}),
    from: q.from,
    to: q.to,
    actorId: q.actor,
    actionClasses: q.actionClass,
    types: q.type,
    subjectId: q.subject,
  };
}

/** The filter as recorded in the query's own audit event (no personal data: the subject id is pseudonymous). */
function describeFilter(f: RecordFilter): Record<string, unknown> {
  return Object.fromEntries(Object.entries({ ...f, tenantId: f.tenantId ?? '*' }).filter(([, v]) => v !== undefined));
}
