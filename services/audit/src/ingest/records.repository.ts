import type { EntityManager } from 'typeorm';
import type { AuditRecord } from '@palisade/audit-log';
import { actionClassOf } from '../coverage/action-classes';
import { EARLIEST_INDEX_MS, storableText } from '../validation';

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

export interface IndexedHead {
  partition: number;
  seq: number;
  hash: string;
  offset: bigint;
}

/** The record index in PostgreSQL. Every method takes the connection or transaction to use. */
export class RecordsRepository {
  /** Records in the chain whose index row is quarantined (index-quarantine.migration.ts). */
  private readonly quarantineTable: string;

  constructor(private readonly table: string) {
    this.quarantineTable = table.replace(/audit_records$/, 'audit_index_quarantine');
  }

  /** Which of `ids` the index (or its quarantine) holds for `topic`: those are chained. */
  async knownEventIds(db: EntityManager, topic: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows: Array<{ event_id: string }> = await db.query(
      `SELECT event_id::text FROM ${this.table} WHERE topic = $1 AND event_id = ANY($2::uuid[])
       UNION ALL
       SELECT event_id::text FROM ${this.quarantineTable} WHERE topic = $1 AND event_id = ANY($2::uuid[])`,
      [topic, ids],
    );
    return new Set(rows.map((r) => r.event_id));
  }

  /** Quarantine rows the index cannot hold; returns those not quarantined before (to alert once). */
  async quarantine(db: EntityManager, topic: string, rows: readonly QuarantinedRow[]): Promise<QuarantinedRow[]> {
    if (rows.length === 0) return [];
    const inserted: Array<{ partition: number; seq: string }> = await db.query(
      `INSERT INTO ${this.quarantineTable} (topic, partition, seq, kafka_offset, hash, event_id, reasons, value)
       SELECT $1, p, s, o, h, e, string_to_array(r, ','), v
         FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::uuid[], $7::text[], $8::text[]) AS t(p, s, o, h, e, r, v)
       ON CONFLICT DO NOTHING
       RETURNING partition, seq::text`,
      [
        topic,
        rows.map((q) => q.row.partition),
        rows.map((q) => q.row.seq),
        rows.map((q) => q.row.offset.toString()),
        rows.map((q) => q.row.hash),
        rows.map((q) => q.row.eventId),
        rows.map((q) => q.reasons.join(',')),
        rows.map((q) => q.row.value),
      ],
    );
    const fresh = new Set(inserted.map((r) => `${r.partition}/${r.seq}`));
    return rows.filter((q) => fresh.has(`${q.row.partition}/${q.row.seq}`));
  }

  /** Quarantined records of a topic, oldest first (no values: they may hold what the index refused). */
  async quarantined(db: EntityManager, topic: string, limit: number): Promise<Array<{ partition: number; seq: number; eventId: string; reasons: string[]; quarantinedAt: string }>> {
    const rows: Array<{ partition: number; seq: string; event_id: string; reasons: string[]; quarantined_at: Date }> = await db.query(
      `SELECT partition, seq::text, event_id::text, reasons, quarantined_at FROM ${this.quarantineTable} WHERE topic = $1 ORDER BY quarantined_at, partition, seq LIMIT $2`,
      [topic, limit],
    );
    return rows.map((r) => ({ partition: r.partition, seq: Number(r.seq), eventId: r.event_id, reasons: r.reasons, quarantinedAt: r.quarantined_at.toISOString() }));
  }

  /** Add rows; rows already indexed (same partition and seq) are left as they are. */
  async insert(db: EntityManager, topic: string, rows: readonly IndexRow[]): Promise<void> {
    if (rows.length === 0) return;
    await db.query(
      `INSERT INTO ${this.table}
         (topic, partition, seq, kafka_offset, hash, event_id, event_type, action_class, tenant_id,
          actor_type, actor_id, subject_id, occurred_at, recorded_at, value, key_id)
       SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::uuid[], $7::text[], $8::text[],
                                $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::timestamptz[], $15::text[], $16::uuid[])
       ON CONFLICT (topic, partition, seq) DO NOTHING`,
      [
        topic,
        rows.map((r) => r.partition),
        rows.map((r) => r.seq),
        rows.map((r) => r.offset.toString()),
        rows.map((r) => r.hash),
        rows.map((r) => r.eventId),
        rows.map((r) => r.eventType),
        rows.map((r) => r.actionClass),
        rows.map((r) => r.tenantId),
        rows.map((r) => r.actorType),
        rows.map((r) => r.actorId),
        rows.map((r) => r.subjectId),
        rows.map((r) => r.occurredAt),
        rows.map((r) => r.recordedAt),
        rows.map((r) => r.value),
        rows.map((r) => r.keyId),
      ],
    );
  }

  /** The last indexed (or quarantined) record of each partition. */
  async heads(db: EntityManager, topic: string): Promise<IndexedHead[]> {
    const rows: Array<{ partition: number; seq: string; hash: string; kafka_offset: string }> = await db.query(
      `SELECT DISTINCT ON (partition) partition, seq::text, hash, kafka_offset::text
         FROM (SELECT partition, seq, hash, kafka_offset FROM ${this.table} WHERE topic = $1
               UNION ALL
               SELECT partition, seq, hash, kafka_offset FROM ${this.quarantineTable} WHERE topic = $1) AS indexed
        ORDER BY partition, seq DESC`,
      [topic],
    );
    return rows.map((r) => ({ partition: r.partition, seq: Number(r.seq), hash: r.hash, offset: BigInt(r.kafka_offset) }));
  }

  /** Raw record values of a partition, seq from..to inclusive, in order. */
  async range(db: EntityManager, topic: string, partition: number, fromSeq: number, toSeq: number, limit: number): Promise<string[]> {
    const rows: Array<{ value: string }> = await db.query(
      `SELECT value FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq BETWEEN $3 AND $4 ORDER BY seq LIMIT $5`,
      [topic, partition, fromSeq, toSeq, limit],
    );
    return rows.map((r) => r.value);
  }

  /** What the index recorded of a partition's record `seq` (hash and time), when indexed. */
  async recordAt(db: EntityManager, topic: string, partition: number, seq: number): Promise<{ seq: number; hash: string; recordedAt: string } | undefined> {
    const rows: Array<{ hash: string; recorded_at: Date }> = await db.query(
      `SELECT hash, recorded_at FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq = $3`,
      [topic, partition, seq],
    );
    return rows[0] ? { seq, hash: rows[0].hash, recordedAt: rows[0].recorded_at.toISOString() } : undefined;
  }

  /** The Kafka offset of a partition's record `seq`, when indexed (or quarantined). */
  async offsetOf(db: EntityManager, topic: string, partition: number, seq: number): Promise<bigint | undefined> {
    const rows: Array<{ kafka_offset: string }> = await db.query(
      `SELECT kafka_offset::text FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq = $3
       UNION ALL
       SELECT kafka_offset::text FROM ${this.quarantineTable} WHERE topic = $1 AND partition = $2 AND seq = $3`,
      [topic, partition, seq],
    );
    return rows[0] ? BigInt(rows[0].kafka_offset) : undefined;
  }

  /** Empty the topic's index and quarantine (before rebuilding them from the topic); returns the index rows removed. */
  async clear(db: EntityManager, topic: string): Promise<number> {
    await db.query(`DELETE FROM ${this.quarantineTable} WHERE topic = $1`, [topic]);
    const result: [unknown[], number] = await db.query(`DELETE FROM ${this.table} WHERE topic = $1`, [topic]);
    return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
  }
}
