import { randomUUID } from 'node:crypto';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { indexDropOffsetMigration } from './index-drop-offset.migration';
import { indexQuarantineMigration } from './index-quarantine.migration';
import { ingestMigration } from './ingest.migration';
import { VALUE_SEPARATOR, type IndexRow, type QuarantinedRow } from './index-rows';
import { testIndexRow } from '../../test/index-row';
import { RecordIndex } from './record-index';
import { RecordsRepository } from './records.repository';

/** The record index's insert against PostgreSQL: every value stored exactly, beside its own row. */
describe('RecordsRepository: writing the index (PostgreSQL)', () => {
  let db: TestSchema;
  let records: RecordsRepository;
  let store: PgEventStore;

  beforeAll(async () => {
    db = await createTestSchema('auditrr');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), indexQuarantineMigration(db.schema, TEST_APP_ROLE), indexDropOffsetMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    records = new RecordsRepository(`${db.schema}.audit_records`);
    store = new PgEventStore(db.dataSource, db.schema);
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  });

  const row = (partition: number, seq: number, value: string): IndexRow =>
    testIndexRow(seq, { partition, hash: `${partition}`.repeat(64).slice(0, 64), eventId: randomUUID(), tenantId: `tenant-${partition}`, value });
  const valueOf = (partition: number, seq: number, extra: string) => JSON.stringify({ partition, seq, extra });
  const stored = (topic: string, partition: number, last: number) => store.inTransaction((tx) => records.range(tx, topic, partition, 1, last, 1000));

  // JSON escapes (quotes, backslashes, \u0000 as text), characters beyond ASCII and beyond the BMP
  const tricky = ['x"y\\z\n\t', '\u0000 \u001e', 'é€😀\u2028', '\\u0000', ''];

  it('stores each value exactly, with its own row, in both parameter forms', async () => {
    for (const [topic, odd] of [['split', ''], ['inside-json', `a${VALUE_SEPARATOR}b`]] as const) {
      // Partitions interleaved, as a batch holds them.
      const rows: IndexRow[] = [];
      for (let seq = 1; seq <= 50; seq++) for (const partition of [0, 1]) rows.push(row(partition, seq, valueOf(partition, seq, tricky[seq % tricky.length])));
      // A value no record holds (a raw separator): the rows go with their values in the JSON.
      if (odd) rows[7] = row(1, 4, `{"raw":"${odd}"}`);
      await store.inTransaction((tx) => records.insert(tx, topic, rows));
      for (const partition of [0, 1]) {
        const expected = rows.filter((r) => r.partition === partition).map((r) => r.value);
        expect(await stored(topic, partition, 50)).toEqual(expected);
      }
    }
  });

  it('appends by COPY each value and column exactly: tabs, newlines, backslashes, unicode, empty, very long', async () => {
    const copyTricky = [...tricky, 'tab\there', 'cr\r\nlf', 'back\\slash\\N', '\\.', '\\', '\\N', 'x'.repeat(1_000_000)];
    const rows: IndexRow[] = [];
    for (let seq = 1; seq <= 24; seq++) for (const partition of [0, 1]) rows.push(row(partition, seq, valueOf(partition, seq, copyTricky[seq % copyTricky.length])));
    // raw values no JSON text holds, and indexed texts that need escaping
    rows[3] = { ...row(1, 2, 'raw\ttab\nnewline\\backslash'), actorId: '', subjectId: 'sub\tject\\', keyId: randomUUID(), tenantId: 'tenant\n2' };
    rows[5] = row(1, 3, '');
    rows[7] = row(1, 4, `{"raw":"a${VALUE_SEPARATOR}b"}`);
    expect(await store.inTransaction((tx) => records.append(tx, 'copy', rows))).toBe(true);
    for (const partition of [0, 1]) expect(await stored('copy', partition, 24)).toEqual(rows.filter((r) => r.partition === partition).map((r) => r.value));
    const columns: Array<Record<string, unknown>> = await db.dataSource.query(
      `SELECT partition, seq::int, kafka_offset::text, hash, event_id::text, event_type, action_class, tenant_id, actor_type, actor_id, subject_id,
              occurred_at, recorded_at, key_id::text FROM ${db.schema}.audit_records WHERE topic = 'copy' ORDER BY seq, partition`,
    );
    expect(columns).toEqual(
      rows.map((r) => ({
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
        occurred_at: new Date(r.occurredAt),
        recorded_at: new Date(r.recordedAt),
        key_id: r.keyId,
      })),
    );
  });

  it('appends nothing, and says so, when a text holds U+0000 (the insert refuses it as before)', async () => {
    const rows = [row(0, 1, valueOf(0, 1, 'fine')), row(0, 2, '{"nul":"\u0000"}')];
    expect(await store.inTransaction((tx) => records.append(tx, 'nul', rows))).toBe(false);
    expect(await stored('nul', 0, 2)).toEqual([]);
  });

  it('refuses by COPY a row already indexed (unique violation), and the index then redoes the batch by insert: no failure, no duplicate', async () => {
    const quarantinedSeen: QuarantinedRow[][] = [];
    const index = new RecordIndex(store, records, 'redo', (q) => quarantinedSeen.push([...q]));
    const first = [row(0, 1, valueOf(0, 1, 'first')), row(0, 2, valueOf(0, 2, 'first'))];
    await index.index(first);
    await expect(store.inTransaction((tx) => records.append(tx, 'redo', [row(0, 3, valueOf(0, 3, 'x')), first[1]]))).rejects.toMatchObject({ code: '23505' });
    expect(await stored('redo', 0, 3)).toEqual([valueOf(0, 1, 'first'), valueOf(0, 2, 'first')]);
    // The same batch again, with a record the index cannot hold as columns (quarantined in the same transaction).
    const again = [first[1], row(0, 3, valueOf(0, 3, 'second')), { ...row(0, 4, valueOf(0, 4, 'second')), occurredAt: '0000-01-01T00:00:00.000Z' }, row(0, 5, valueOf(0, 5, 'second'))];
    await index.index(again);
    expect(await stored('redo', 0, 5)).toEqual([valueOf(0, 1, 'first'), valueOf(0, 2, 'first'), valueOf(0, 3, 'second'), valueOf(0, 5, 'second')]);
    expect(await store.inTransaction((tx) => records.countEventIds(tx, 'redo'))).toBe(5);
    expect(quarantinedSeen.map((q) => q.map((r) => r.row.seq))).toEqual([[4]]);
    // A batch wholly indexed already: nothing changes.
    await index.index(again);
    expect(await store.inTransaction((tx) => records.countEventIds(tx, 'redo'))).toBe(5);
    expect(quarantinedSeen).toHaveLength(1);
  });

  it('answers offsets and heads without the offset index (dropped)', async () => {
    const indexes: Array<{ indexname: string }> = await db.dataSource.query(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'audit_records' ORDER BY 1`, [db.schema]);
    expect(indexes.map((i) => i.indexname)).toEqual([
      'audit_records_event_once',
      'audit_records_pkey',
      'audit_records_subject',
      'audit_records_subject_key',
      'audit_records_tenant_time',
      'audit_records_time',
    ]);
    const rows = [row(0, 1, valueOf(0, 1, 'a')), row(0, 2, valueOf(0, 2, 'b')), row(1, 1, valueOf(1, 1, 'c'))];
    await store.inTransaction((tx) => records.append(tx, 'offsets', rows));
    expect(await store.inTransaction((tx) => records.offsetOf(tx, 'offsets', 0, 2))).toBe(1n);
    expect(await store.inTransaction((tx) => records.heads(tx, 'offsets'))).toEqual([
      { partition: 0, seq: 2, hash: rows[1].hash, offset: 1n },
      { partition: 1, seq: 1, hash: rows[2].hash, offset: 0n },
    ]);
  });

  it('leaves rows already indexed as they are', async () => {
    const first = [row(0, 1, valueOf(0, 1, 'first')), row(0, 2, valueOf(0, 2, 'first'))];
    await store.inTransaction((tx) => records.insert(tx, 'again', first));
    await store.inTransaction((tx) => records.insert(tx, 'again', [row(0, 2, valueOf(0, 2, 'second')), row(0, 3, valueOf(0, 3, 'second'))]));
    expect(await stored('again', 0, 3)).toEqual([valueOf(0, 1, 'first'), valueOf(0, 2, 'first'), valueOf(0, 3, 'second')]);
  });
});
