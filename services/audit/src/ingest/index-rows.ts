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
  // Field by field, not a list of pairs: six arrays a row were ~0.7 kB of garbage.
  if (!storableText(row.eventType)) problems.push('unstorable_event_type');
  if (!storableText(row.tenantId)) problems.push('unstorable_tenant_id');
  if (!storableText(row.actorType)) problems.push('unstorable_actor_type');
  if (!storableText(row.actorId)) problems.push('unstorable_actor_id');
  if (row.subjectId !== null && !storableText(row.subjectId)) problems.push('unstorable_subject_id');
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

/**
 * Separates the record values in one text parameter (`indexParameters`). A record value is
 * one JSON text (the writer's JCS form, or a Kafka value recovery parsed), and JSON never
 * holds a raw control character.
 */
export const VALUE_SEPARATOR = '\x1e';

/**
 * The index rows as two parameters (pure): the record values joined by VALUE_SEPARATOR,
 * which PostgreSQL splits (`string_to_array`), and the other columns as JSON, each row with
 * its 1-based place `i` among the values. PostgreSQL parses the values' bytes once instead
 * of unescaping each value from a JSON string (40 % of its CPU per row in the index
 * insert). `undefined` when a value is empty or holds the separator (never a record's):
 * those rows go with their values inside the JSON.
 */
export function indexParameters(rows: readonly IndexRow[]): { columns: string; values: string } | undefined {
  for (const r of rows) if (r.value.length === 0 || r.value.includes(VALUE_SEPARATOR)) return undefined;
  const columns = JSON.stringify(rows.map((r, i) => ({ i: i + 1, ...indexColumns(r) })));
  return { columns, values: rows.map((r) => r.value).join(VALUE_SEPARATOR) };
}

/** A row's columns but its value, named as in the table. */
export function indexColumns(r: IndexRow) {
  return {
    partition: r.partition,
    seq: r.seq,
    kafka_offset: r.offset.toString(),
    hash: r.hash,
    event_id: r.eventId,
    event_type: r.eventType,
    action_class: r.actionClass,
    tenant_id: r.tenantId,
    actor_type: r.actorType,
    actor_id: r.actorId,
    subject_id: r.subjectId,
    occurred_at: r.occurredAt,
    recorded_at: r.recordedAt,
    key_id: r.keyId,
  };
}

/** The index columns a COPY of `indexCopyData` fills, in its fields' order. */
export const INDEX_COPY_COLUMNS =
  '(topic, partition, seq, kafka_offset, hash, event_id, event_type, action_class, tenant_id, actor_type, actor_id, subject_id, occurred_at, recorded_at, value, key_id)';

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const COPY_SPECIALS = /[\\\t\n\r]/g;

/** A text as a field of COPY's text format: the backslash and what would end a field or a row escaped. */
export function copyField(text: string): string {
  // Four native searches, not a regular expression: ~50 ns for a 600-character record value
  // against 400–800 (measured), and every row's value is searched.
  const special = text.includes('\\') || text.includes('\t') || text.includes('\n') || text.includes('\r');
  return special ? text.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]) : text;
}

const copyNullable = (text: string | null) => (text === null ? '\\N' : copyField(text));

/**
 * The topic's index rows as the data of `COPY … (INDEX_COPY_COLUMNS) FROM STDIN` in its text
 * format (pure): one line a row, fields apart by tabs, null as `\N`. PostgreSQL reads each
 * field with its column's input function, as it reads the insert's JSON, without parsing a
 * JSON document (about half its CPU a row in the insert). `undefined` when a text holds
 * U+0000, which no PostgreSQL text can: those rows go by the insert, which refuses them as
 * before. A lone surrogate is written as U+FFFD (UTF-8 has none), as the insert's text
 * parameter was.
 *
 * Written row by row into one buffer: building the batch as one string (~1.2 MB, ~50,000
 * pieces) and then encoding it cost twice as much (2.25 against 1.2 µs a row, measured).
 */
export function indexCopyData(topic: string, rows: readonly IndexRow[]): Buffer | undefined {
  const t = copyField(topic);
  let buf = Buffer.allocUnsafe(rows.length * 1024 + 4096);
  let at = 0;
  const put = (text: string) => {
    // UTF-8 takes at most 3 bytes per UTF-16 unit (a pair: 4 for 2).
    if (buf.length - at < text.length * 3) {
      const grown = Buffer.allocUnsafe(Math.max(2 * buf.length, at + text.length * 3));
      buf.copy(grown, 0, 0, at);
      buf = grown;
    }
    at += buf.write(text, at);
  };
  for (const r of rows) {
    put(
      `${t}\t${r.partition}\t${r.seq}\t${r.offset}\t${copyField(r.hash)}\t${copyField(r.eventId)}\t${copyField(r.eventType)}\t${copyField(r.actionClass)}` +
        `\t${copyField(r.tenantId)}\t${copyField(r.actorType)}\t${copyField(r.actorId)}\t${copyNullable(r.subjectId)}\t${copyField(r.occurredAt)}` +
        `\t${copyField(r.recordedAt)}\t`,
    );
    put(copyField(r.value));
    put(`\t${copyNullable(r.keyId)}\n`);
  }
  const data = buf.subarray(0, at);
  // U+0000 is the only character whose UTF-8 holds a zero byte.
  return data.includes(0) ? undefined : data;
}
