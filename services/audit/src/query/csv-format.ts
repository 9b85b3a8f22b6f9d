import { csvOf, spreadsheetSafe } from '@palisade/service-kit';
import type { AuditRecord } from '@palisade/audit-log';
import { actionClassOf } from '../coverage/action-classes';

/** The CSV export's format (pure): one row per record, personal data left out. */

const CSV_COLUMNS = ['partition', 'seq', 'recordedAt', 'occurredAt', 'eventId', 'type', 'actionClass', 'tenantId', 'actorType', 'actorId', 'subjectId', 'source', 'data', 'hash'];

/** The header line. */
export function csvHeader(): string {
  return csvOf([CSV_COLUMNS]);
}

/** The lines of these records, in order. */
export function csvLines(records: readonly AuditRecord[]): string {
  return csvOf(records.map(csvRow));
}

/** A CSV row; a cell a spreadsheet would read as a formula is prefixed with "'". */
export function csvRow(r: AuditRecord): string[] {
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
  return cells.map(spreadsheetSafe);
}
