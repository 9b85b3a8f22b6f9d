import { randomUUID } from 'node:crypto';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { indexQuarantineMigration } from './index-quarantine.migration';
import { ingestMigration } from './ingest.migration';
import { VALUE_SEPARATOR, type IndexRow } from './index-rows';
import { RecordsRepository } from './records.repository';

/** The record index's insert against PostgreSQL: every value stored exactly, beside its own row. */
describe('RecordsRepository.insert (PostgreSQL)', () => {
  let db: TestSchema;
  let records: RecordsRepository;
  let store: PgEventStore;

  beforeAll(async () => {
    db = await createTestSchema('auditrr');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), indexQuarantineMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    records = new RecordsRepository(`${db.schema}.audit_records`);
    store = new PgEventStore(db.dataSource, db.schema);
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  });

  const row = (partition: number, seq: number, value: string): IndexRow => ({
    partition,
    seq,
    offset: BigInt(seq - 1),
    hash: `${partition}`.repeat(64).slice(0, 64),
    eventId: randomUUID(),
    eventType: 'billing.usage.recorded',
    actionClass: 'other',
    tenantId: `tenant-${partition}`,
    actorType: 'agent',
    actorId: 'agent-1',
    subjectId: null,
    keyId: null,
    occurredAt: '2026-12-05T01:00:00.000Z',
    recordedAt: '2026-12-05T01:00:00.001Z',
    value,
  });
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

  it('leaves rows already indexed as they are', async () => {
    const first = [row(0, 1, valueOf(0, 1, 'first')), row(0, 2, valueOf(0, 2, 'first'))];
    await store.inTransaction((tx) => records.insert(tx, 'again', first));
    await store.inTransaction((tx) => records.insert(tx, 'again', [row(0, 2, valueOf(0, 2, 'second')), row(0, 3, valueOf(0, 3, 'second'))]));
    expect(await stored('again', 0, 3)).toEqual([valueOf(0, 1, 'first'), valueOf(0, 2, 'first'), valueOf(0, 3, 'second')]);
  });
});
