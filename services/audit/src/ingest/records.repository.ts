import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf, submitOf } from '@palisade/postgres';
import { from as copyFrom } from 'pg-copy-streams';
import { indexColumns, indexCopyData, indexParameters, INDEX_COPY_COLUMNS, type IndexRow, type QuarantinedRow } from './index-rows';

/** The index columns but the value, as `json_to_recordset` reads them (`i`: the row's place among the values). */
const COLUMNS = `i bigint, partition int, seq bigint, kafka_offset bigint, hash text, event_id uuid, event_type text, action_class text,
  tenant_id text, actor_type text, actor_id text, subject_id text, occurred_at timestamptz, recorded_at timestamptz, key_id uuid`;

export interface IndexedHead {
  partition: number;
  seq: number;
  hash: string;
  offset: bigint;
}

/** The record index in PostgreSQL. Every method takes the transaction to use. */
export class RecordsRepository {
  /** Records in the chain whose index row is quarantined (index-quarantine.migration.ts). */
  private readonly quarantineTable: string;

  constructor(private readonly table: string) {
    this.quarantineTable = table.replace(/audit_records$/, 'audit_index_quarantine');
  }

  /** Which of `ids` the index (or its quarantine) holds for `topic`: those are chained. */
  async knownEventIds(tx: Transaction, topic: string, ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows: Array<{ event_id: string }> = await sqlOf(tx).query(
      `SELECT event_id::text FROM ${this.table} WHERE topic = $1 AND event_id = ANY($2::uuid[])
       UNION ALL
       SELECT event_id::text FROM ${this.quarantineTable} WHERE topic = $1 AND event_id = ANY($2::uuid[])`,
      [topic, ids],
    );
    return new Set(rows.map((r) => r.event_id));
  }

  /** How many event ids the index (and its quarantine) holds for `topic`. */
  async countEventIds(tx: Transaction, topic: string): Promise<number> {
    const rows: Array<{ n: string }> = await sqlOf(tx).query(
      `SELECT (SELECT count(*) FROM ${this.table} WHERE topic = $1) + (SELECT count(*) FROM ${this.quarantineTable} WHERE topic = $1) AS n`,
      [topic],
    );
    return Number(rows[0].n);
  }

  /** A page of the topic's event ids in the index, in id order after `after` (null: from the first). */
  async eventIdsAfter(tx: Transaction, topic: string, after: string | null, limit: number): Promise<string[]> {
    const rows: Array<{ event_id: string }> = await sqlOf(tx).query(
      `SELECT event_id::text FROM ${this.table} WHERE topic = $1 AND ($2::uuid IS NULL OR event_id > $2::uuid) ORDER BY event_id LIMIT $3`,
      [topic, after, limit],
    );
    return rows.map((r) => r.event_id);
  }

  /** The event ids of the topic's quarantined records (few). */
  async quarantinedEventIds(tx: Transaction, topic: string): Promise<string[]> {
    const rows: Array<{ event_id: string }> = await sqlOf(tx).query(`SELECT event_id::text FROM ${this.quarantineTable} WHERE topic = $1`, [topic]);
    return rows.map((r) => r.event_id);
  }

  /** Quarantine rows the index cannot hold; returns those not quarantined before (to alert once). */
  async quarantine(tx: Transaction, topic: string, rows: readonly QuarantinedRow[]): Promise<QuarantinedRow[]> {
    if (rows.length === 0) return [];
    const inserted: Array<{ partition: number; seq: string }> = await sqlOf(tx).query(
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
  async quarantined(tx: Transaction, topic: string, limit: number): Promise<Array<{ partition: number; seq: number; eventId: string; reasons: string[]; quarantinedAt: string }>> {
    const rows: Array<{ partition: number; seq: string; event_id: string; reasons: string[]; quarantined_at: Date }> = await sqlOf(tx).query(
      `SELECT partition, seq::text, event_id::text, reasons, quarantined_at FROM ${this.quarantineTable} WHERE topic = $1 ORDER BY quarantined_at, partition, seq LIMIT $2`,
      [topic, limit],
    );
    return rows.map((r) => ({ partition: r.partition, seq: Number(r.seq), eventId: r.event_id, reasons: r.reasons, quarantinedAt: r.quarantined_at.toISOString() }));
  }

  /**
   * Add rows; rows already indexed (same partition and seq) are left as they are. The
   * values go as one text that PostgreSQL splits, the other columns as one JSON parameter
   * (`indexParameters`); rows it cannot carry so go with their values inside the JSON.
   */
  async insert(tx: Transaction, topic: string, rows: readonly IndexRow[]): Promise<void> {
    if (rows.length === 0) return;
    const params = indexParameters(rows) ?? { columns: JSON.stringify(rows.map((r) => ({ i: 0, ...indexColumns(r), value: r.value }))), values: null };
    await sqlOf(tx).query(
      `INSERT INTO ${this.table}
         (topic, partition, seq, kafka_offset, hash, event_id, event_type, action_class, tenant_id,
          actor_type, actor_id, subject_id, occurred_at, recorded_at, value, key_id)
       SELECT $1, r.partition, r.seq, r.kafka_offset, r.hash, r.event_id, r.event_type, r.action_class, r.tenant_id,
              r.actor_type, r.actor_id, r.subject_id, r.occurred_at, r.recorded_at, coalesce(v.value, r.value), r.key_id
         FROM json_to_recordset($2::json) AS r(${COLUMNS}, value text)
         -- the values split from $3 (null: each inside its row's JSON); LEFT: a row left without
         -- a value fails on value NOT NULL instead of being dropped unseen
         LEFT JOIN unnest(string_to_array($3::text, E'\\x1e')) WITH ORDINALITY AS v(value, i) ON v.i = r.i
       ON CONFLICT (topic, partition, seq) DO NOTHING`,
      [topic, params.columns, params.values],
    );
  }

  /**
   * Add rows none of which is indexed yet, by COPY (`indexCopyData`): 9–10 µs of
   * PostgreSQL CPU a row less than `insert`, but COPY cannot leave a row already indexed as it is:
   * such a row fails the statement, and the transaction, with a unique violation (23505),
   * and the caller redoes its transaction with `insert`. Returns false, having done nothing,
   * when the rows cannot go so (a text holding U+0000, or a transaction that cannot COPY):
   * then `insert` them.
   */
  async append(tx: Transaction, topic: string, rows: readonly IndexRow[]): Promise<boolean> {
    if (rows.length === 0) return true;
    const submit = submitOf(sqlOf(tx));
    const data = submit && indexCopyData(topic, rows);
    if (!submit || data === undefined) return false;
    const copy = submit(copyFrom(`COPY ${this.table} ${INDEX_COPY_COLUMNS} FROM STDIN`));
    await new Promise<void>((resolve, reject) => {
      copy.on('error', reject);
      copy.on('finish', resolve);
      copy.end(data);
    });
    return true;
  }

  /** The last indexed (or quarantined) record of each partition. */
  async heads(tx: Transaction, topic: string): Promise<IndexedHead[]> {
    const rows: Array<{ partition: number; seq: string; hash: string; kafka_offset: string }> = await sqlOf(tx).query(
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
  async range(tx: Transaction, topic: string, partition: number, fromSeq: number, toSeq: number, limit: number): Promise<string[]> {
    const rows: Array<{ value: string }> = await sqlOf(tx).query(
      `SELECT value FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq BETWEEN $3 AND $4 ORDER BY seq LIMIT $5`,
      [topic, partition, fromSeq, toSeq, limit],
    );
    return rows.map((r) => r.value);
  }

  /** What the index recorded of a partition's record `seq` (hash and time), when indexed. */
  async recordAt(tx: Transaction, topic: string, partition: number, seq: number): Promise<{ seq: number; hash: string; recordedAt: string } | undefined> {
    const rows: Array<{ hash: string; recorded_at: Date }> = await sqlOf(tx).query(
      `SELECT hash, recorded_at FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq = $3`,
      [topic, partition, seq],
    );
    return rows[0] ? { seq, hash: rows[0].hash, recordedAt: rows[0].recorded_at.toISOString() } : undefined;
  }

  /** The Kafka offset of a partition's record `seq`, when indexed (or quarantined). */
  async offsetOf(tx: Transaction, topic: string, partition: number, seq: number): Promise<bigint | undefined> {
    const rows: Array<{ kafka_offset: string }> = await sqlOf(tx).query(
      `SELECT kafka_offset::text FROM ${this.table} WHERE topic = $1 AND partition = $2 AND seq = $3
       UNION ALL
       SELECT kafka_offset::text FROM ${this.quarantineTable} WHERE topic = $1 AND partition = $2 AND seq = $3`,
      [topic, partition, seq],
    );
    return rows[0] ? BigInt(rows[0].kafka_offset) : undefined;
  }

  /** Empty the topic's index and quarantine (before rebuilding them from the topic); returns the index rows removed. */
  async clear(tx: Transaction, topic: string): Promise<number> {
    await sqlOf(tx).query(`DELETE FROM ${this.quarantineTable} WHERE topic = $1`, [topic]);
    const result: [unknown[], number] = await sqlOf(tx).query(`DELETE FROM ${this.table} WHERE topic = $1`, [topic]);
    return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
  }
}
