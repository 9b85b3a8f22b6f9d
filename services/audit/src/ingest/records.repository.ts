import type { EntityManager } from 'typeorm';
import type { AuditRecord } from '@palisade/audit-log';
import { actionClassOf } from '../coverage/action-classes';

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
  occurredAt: string;
  recordedAt: string;
  value: string;
}

export function indexRowOf(record: AuditRecord, offset: bigint, value: string): IndexRow {
  const e = record.event;
  const personal = e.personal as { subjectId?: unknown } | undefined;
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
    occurredAt: e.occurredAt,
    recordedAt: record.recordedAt,
    value,
  };
}

export interface IndexedHead {
  partition: number;
  seq: number;
  hash: string;
  offset: bigint;
}

/** The record index in PostgreSQL. Every method takes the connection or transaction to use. */
export class RecordsRepository {
  constructor(private readonly table: string) {}

  /** Which of `ids` the index holds for `topic`. */
  async knownEventIds(db: EntityManager, topic: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows: Array<{ event_id: string }> = await db.query(
      `SELECT event_id::text FROM ${this.table} WHERE topic = $1 AND event_id = ANY($2::uuid[])`,
      [topic, ids],
    );
    return new Set(rows.map((r) => r.event_id));
  }

  /** Add rows; rows already indexed (same partition and seq) are left as they are. */
  async insert(db: EntityManager, topic: string, rows: readonly IndexRow[]): Promise<void> {
    if (rows.length === 0) return;
    await db.query(
      `INSERT INTO ${this.table}
         (topic, partition, seq, kafka_offset, hash, event_id, event_type, action_class, tenant_id,
          actor_type, actor_id, subject_id, occurred_at, recorded_at, value)
       SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::uuid[], $7::text[], $8::text[],
                                $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::timestamptz[], $15::text[])
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
      ],
    );
  }

  /** The last indexed record of each partition. */
  async heads(db: EntityManager, topic: string): Promise<IndexedHead[]> {
    const rows: Array<{ partition: number; seq: string; hash: string; kafka_offset: string }> = await db.query(
      `SELECT DISTINCT ON (partition) partition, seq::text, hash, kafka_offset::text
         FROM ${this.table} WHERE topic = $1 ORDER BY partition, seq DESC`,
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

  /** The Kafka offset of a partition's record `seq`, when indexed. */
  async offsetOf(db: EntityManager, topic: string, partition: number, seq: number): Promise<bigint | undefined> {
    const rows: Array<{ kafka_offset: string }> = await db.query(
      `SELECT kafka_offset::text FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq = $3`,
      [topic, partition, seq],
    );
    return rows[0] ? BigInt(rows[0].kafka_offset) : undefined;
  }

  /** Empty the topic's index (before rebuilding it from the topic); returns the rows removed. */
  async clear(db: EntityManager, topic: string): Promise<number> {
    const result: [unknown[], number] = await db.query(`DELETE FROM ${this.table} WHERE topic = $1`, [topic]);
    return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
  }
}
