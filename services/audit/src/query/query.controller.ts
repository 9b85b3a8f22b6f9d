import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { stringify } from 'csv-stringify/sync';
import type { AuditRecord } from '@palisade/audit-log';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { AuditEvents } from '../audit.events';
import { actionClassOf } from '../coverage/action-classes';
import { AuditRuntime } from '../ingest/audit-runtime';
import { parseInput } from '../validation';
import { readAccessOf } from './access';
import { eventsQuerySchema, exportQuerySchema, type EventsQuery } from './query.dto';
import { decodeCursor, encodeCursor, type RecordFilter } from './query.repository';

export interface EventsPage {
  items: Array<Omit<AuditRecord, 'event'> & { actionClass: string; event: AuditRecord['event'] }>;
  nextCursor: string | null;
}

const EXPORT_PAGE = 2000;
const CSV_COLUMNS = ['partition', 'seq', 'recordedAt', 'occurredAt', 'eventId', 'type', 'actionClass', 'tenantId', 'actorType', 'actorId', 'subjectId', 'source', 'data', 'hash'];

/**
 * Queries and exports of the audit log, served from the record index in PostgreSQL
 * (rebuildable from the topic). A tenant's auditors (audit:read) see their tenant only;
 * a platform auditor (audit:read:all) every tenant. Every query and export is itself an
 * audited event (class data_export).
 */
@ApiTags('audit query')
@Controller('v1/audit/events')
export class QueryController {
  constructor(
    private readonly runtime: AuditRuntime,
    private readonly events: AuditEvents,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Audit records filtered by tenant, time range (occurredAt), actor, action class, event type and data subject; cursor paging. Scope audit:read (own tenant) or audit:read:all.' })
  @ApiOkResponse({ description: '{items: records with `personal` opened (or {subjectId, erased: true}) and their actionClass, nextCursor}' })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: unknown): Promise<EventsPage> {
    const q = parseInput(eventsQuerySchema, query, 'query');
    const filter = this.filterOf(principal, q);
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    await this.events.record(principal, 'audit.events.queried', { filter: describeFilter(filter), cursor: q.cursor !== undefined });
    const rows = await this.runtime.query.page(this.runtime.db(), this.runtime.settings.topic, filter, after, q.limit, 'time');
    const records = rows.map((r) => JSON.parse(r.value) as AuditRecord);
    const opened = await this.runtime.personal.openAll(records.map((r) => r.event));
    const items = records.map((r, i) => {
      const event = { ...r.event };
      if (opened[i] !== undefined) event.personal = opened[i];
      return { ...r, actionClass: actionClassOf(r.event.type), event };
    });
    return { items, nextCursor: rows.length === q.limit ? encodeCursor(rows[rows.length - 1]) : null };
  }

  @Get('export')
  @ApiOperation({ summary: 'Export as NDJSON (the raw records, partition by partition in seq order: `palisade audit verify --file` checks them) or CSV (one row per record; personal data left out). Same filters and access as the query.' })
  @ApiProduces('application/x-ndjson', 'text/csv')
  async export(@CurrentPrincipal() principal: Principal, @Query() query: unknown, @Res() res: Response): Promise<void> {
    const q = parseInput(exportQuerySchema, query, 'query');
    const filter = this.filterOf(principal, q);
    await this.events.record(principal, 'audit.events.exported', { filter: describeFilter(filter), format: q.format, limit: q.limit });
    const db = this.runtime.db();
    const topic = this.runtime.settings.topic;
    res.status(200);
    res.setHeader('content-type', q.format === 'ndjson' ? 'application/x-ndjson; charset=utf-8' : 'text/csv; charset=utf-8');
    res.setHeader('content-disposition', `attachment; filename="audit-export.${q.format}"`);
    res.setHeader('cache-control', 'no-store');
    if (q.format === 'csv') res.write(stringify([CSV_COLUMNS]));
    let after: { partition: number; seq: number } | undefined;
    let written = 0;
    while (written < q.limit) {
      const rows = await this.runtime.query.page(db, topic, filter, after, Math.min(EXPORT_PAGE, q.limit - written), 'chain');
      if (rows.length === 0) break;
      const chunk =
        q.format === 'ndjson'
          ? rows.map((r) => `${r.value}\n`).join('')
          : stringify(rows.map((r) => csvRow(JSON.parse(r.value) as AuditRecord)));
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      written += rows.length;
      after = { partition: rows[rows.length - 1].partition, seq: rows[rows.length - 1].seq };
    }
    res.end();
  }

  private filterOf(principal: Principal, q: Omit<EventsQuery, 'cursor' | 'limit'>): RecordFilter {
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
}

/** The filter as recorded in the query's own audit event (no personal data: the subject id is pseudonymous). */
function describeFilter(f: RecordFilter): Record<string, unknown> {
  return Object.fromEntries(Object.entries({ ...f, tenantId: f.tenantId ?? '*' }).filter(([, v]) => v !== undefined));
}

/** A CSV row; a cell a spreadsheet would read as a formula is prefixed with "'". */
function csvRow(r: AuditRecord): string[] {
  const e = r.event;
  const subject = (e.personal as { subjectId?: unknown } | undefined)?.subjectId;
  const cells = [
    String(r.partition),
    String(r.seq),
    r.recordedAt,
    e.occurredAt,
    e.id,
    e.type,
    actionClassOf(e.type),
    e.tenantId,
    e.actor?.type ?? '',
    e.actor?.id ?? '',
    typeof subject === 'string' ? subject : '',
    e.source,
    JSON.stringify(e.data ?? {}),
    r.hash,
  ];
  return cells.map((c) => (/^[=+\-@\t\r]/.test(c) ? `'${c}` : c));
}
