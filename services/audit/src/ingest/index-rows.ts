import type { AuditRecord } from '@palisade/audit-log';
import { actionClassOf } from '../coverage/action-classes';
import { EARLIEST_INDEX_MS, storableText } from '../validation';

/** Rows of the record index made from chained records, and which of them the index can hold. Pure. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A row of the record index (ingest.migration.ts). */
export interface IndexRow {
  partition: number;
  seq: number;
  offset: bigint;
  hash: string;
  eventId: string;
  eventType: string;
  actionClass: string;
  tenantId: string;
  actorType: string;
  actorId: string;
  subjectId: string | null;
  /** The key sealing `personal` (null without personal data). */
  keyId: string | null;
  occurredAt: string;
  recordedAt: string;
  value: string;
}

export function indexRowOf(record: AuditRecord, offset: bigint, value: string): IndexRow {
  const e = record.event;
  const personal = e.personal as { subjectId?: unknown; keyId?: unknown } | undefined;
  return {
    partition: record.partition,
    seq: record.seq,
    offset,
    hash: record.hash,
    eventId: e.id,
    eventType: e.type,
    actionClass: actionClassOf(e.type),
    tenantId: e.tenantId,
    actorType: e.actor?.type ?? 'system',
    actorId: e.actor?.id ?? '',
    subjectId: typeof personal?.subjectId === 'string' ? personal.subjectId : null,
    keyId: typeof personal?.keyId === 'string' && UUID.test(personal.keyId) ? personal.keyId : null,
    occurredAt: e.occurredAt,
    recordedAt: record.recordedAt,
    value,
  };
}

/** Why the record index cannot hold a row as columns (empty: it can). Pure. */
export function indexProblems(row: IndexRow): string[] {
  const problems: string[] = [];
  const at = Date.parse(row.occurredAt);
  if (Number.isNaN(at) || at < EARLIEST_INDEX_MS || row.occurredAt.startsWith('0000')) problems.push('occurred_at_out_of_range');
  const texts: Array<[string, string | null]> = [
    ['event_type', row.eventType],
    ['tenant_id', row.tenantId],
    ['actor_type', row.actorType],
    ['actor_id', row.actorId],
    ['subject_id', row.subjectId],
  ];
  for (const [column, value] of texts) if (value !== null && !storableText(value)) problems.push(`unstorable_${column}`);
  return problems;
}

/** A record that is in the chain but whose index row is quarantined, and why. */
export interface QuarantinedRow {
  row: IndexRow;
  reasons: string[];
}

/** Split rows into those the index holds and those it cannot (quarantined). Pure. */
export function splitIndexable(rows: readonly IndexRow[]): { indexable: IndexRow[]; quarantined: QuarantinedRow[] } {
  const indexable: IndexRow[] = [];
  const quarantined: QuarantinedRow[] = [];
  for (const row of rows) {
    const reasons = indexProblems(row);
    if (reasons.length === 0) indexable.push(row);
    else quarantined.push({ row, reasons });
  }
  return { indexable, quarantined };
}

/**
 * The index rows of records just committed: Kafka answers each partition's base offset,
 * the records of a partition follow it in the order they were sent.
 */
export function indexRowsOf(topic: string, written: ReadonlyArray<{ record: AuditRecord; value: string }>, metadata: ReadonlyArray<{ topicName: string; partition: number; baseOffset?: string }>): IndexRow[] {
  const base = new Map<number, bigint>();
  for (const m of metadata) {
    if (m.topicName === topic && m.baseOffset !== undefined) base.set(m.partition, BigInt(m.baseOffset));
  }
  const nth = new Map<number, bigint>();
  return written.map(({ record, value }) => {
    const i = nth.get(record.partition) ?? 0n;
    nth.set(record.partition, i + 1n);
    const offset = base.get(record.partition);
    if (offset === undefined) throw new Error(`Kafka returned no offset for partition ${record.partition}`);
    return indexRowOf(record, offset + i, value);
  });
}
