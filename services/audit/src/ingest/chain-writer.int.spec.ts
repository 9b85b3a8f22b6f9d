import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AuditRecord, RecordedEvent } from '@palisade/audit-log';
import { buildEvent, newEventId, type EventEnvelope, type EventFactoryContext, type Personal } from '@palisade/contracts';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import type { Logger } from '@palisade/observability';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { ServiceIdentity } from '@palisade/pki';
import { createTestSchema, eventually, infra, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { endOffsets, readRange, type TopicSettings } from './audit-topic';
import { ChainWriter, type PersonalDataSealer } from './chain-writer';
import { indexQuarantineMigration } from './index-quarantine.migration';
import { ingestMigration } from './ingest.migration';
import type { QuarantinedRow } from './index-rows';
import { RecordIndex } from './record-index';
import { RecordsRepository } from './records.repository';
import { KeyEncryptionKey } from '../keys/kek';
import { PersonalData } from '../subjects/personal-data';
import { SubjectKeysRepository } from '../subjects/subject-keys.repository';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;
const ctx: EventFactoryContext = { source: 'billing', now: () => new Date(), newId: () => newEventId() };

/**
 * The chain writer against the real broker and PostgreSQL: a batch whose records exceed
 * what Kafka takes in one partition's record batch (1 MB) is split over transactions,
 * each id is chained once (repeats within the batch included) and every chain links.
 */
describe('ChainWriter (Kafka, PostgreSQL)', () => {
  let identity: ServiceIdentity;
  let kafka: Kafka;
  let admin: Admin;
  let db: TestSchema;
  let settings: TopicSettings;
  let writer: ChainWriter | undefined;
  const quarantineAlerts: QuarantinedRow[] = [];

  beforeAll(async () => {
    identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity, clientId: 'audit-chain-writer-int', logLevel: 'error' });
    admin = kafka.admin();
    await admin.connect();
    db = await createTestSchema('auditcw');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), indexQuarantineMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    const topic = `palisade.audit.cwtest-${randomBytes(4).toString('hex')}`;
    settings = { topic, checkpointTopic: `${topic}-checkpoints`, partitions: 2, replicationFactor: 1, minInsyncReplicas: 1, retentionMs: 3_600_000 };
  }, 60_000);

  afterAll(async () => {
    await writer?.deactivate('test over');
    await admin?.deleteTopics({ topics: [settings.topic, settings.checkpointTopic] }).catch(() => undefined);
    await admin?.disconnect();
    await db?.drop();
    identity?.stop();
  }, 60_000);

  /** The records of `topic` from `from` on, once at least `atLeast` are readable (a commit's markers come a moment after it returns). */
  const recordsOf = (topic: string, atLeast: number, from: ReadonlyMap<number, bigint> = new Map()) =>
    eventually(async () => {
      const found: AuditRecord[] = [];
      await readRange(kafka, topic, from, await endOffsets(admin, topic), async (batch) => {
        for (const r of batch) found.push(JSON.parse(r.value) as AuditRecord);
      }, { groupPrefix: 'audit-cw-int' });
      return found.length >= atLeast && found;
    });
  /** Settings of a topic of the test's own, beside the shared one. */
  const ownTopic = (suffix: string): TopicSettings => ({ ...settings, topic: `${settings.topic}-${suffix}`, checkpointTopic: `${settings.topic}-${suffix}-checkpoints` });
  /** A writer of `own`'s topic with a signing key of its own. */
  const writerOn = (own: TopicSettings, index: RecordIndex, sealer: PersonalDataSealer) => {
    const { privateKey } = generateKeyPairSync('ed25519');
    return new ChainWriter({
      kafka,
      admin,
      settings: own,
      transactionalId: `palisade-audit-writer-${own.topic}`,
      index,
      sealer,
      signer: { current: async () => ({ kid: 'test', privateKey }) },
      logger: quiet,
    });
  };

  it('splits a batch too large for one transaction, chains each id once, in order, every link intact', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    writer = new ChainWriter({
      kafka,
      admin,
      settings,
      transactionalId: `palisade-audit-writer-${settings.topic}`,
      index: new RecordIndex(
        new PgEventStore(db.dataSource, db.schema),
        new RecordsRepository(`${db.schema}.audit_records`),
        settings.topic,
        (rows) => quarantineAlerts.push(...rows),
      ),
      sealer: { sealAll: async (events: readonly EventEnvelope[]) => events as unknown as RecordedEvent[] },
      signer: { current: async () => ({ kid: 'test', privateKey }) },
      logger: quiet,
    });
    // 24 events of ~100 kB in 2 tenants: ~1.2 MB per partition in one batch, which Kafka
    // refuses as one record batch; 6 of them appended twice (a redelivery).
    const events = Array.from({ length: 24 }, (_, n) =>
      buildEvent(ctx, {
        type: 'billing.usage.recorded',
        tenantId: `cw-tenant-${n % 2}`,
        actor: { type: 'agent', id: `agent-${n}` },
        data: { n, blob: 'x'.repeat(100_000) },
      }),
    );
    const appended = [...events.slice(0, 12), events[0], events[3], ...events.slice(12), events[12], events[20], events[23], events[5]];
    writer.activate();
    await Promise.all(appended.map((e) => writer!.append(e)));

    // A commit returns before the broker has written its markers: the last transaction
    // becomes readable (read_committed) a moment later.
    const records = await eventually(async () => {
      const read: Array<{ partition: number; offset: bigint; record: AuditRecord }> = [];
      await readRange(kafka, settings.topic, new Map(), await endOffsets(admin, settings.topic), async (batch) => {
        for (const r of batch) read.push({ partition: r.partition, offset: BigInt(r.offset), record: JSON.parse(r.value) as AuditRecord });
      }, { groupPrefix: 'audit-cw-int' });
      return read.length >= events.length && read;
    });

    // Each id once.
    expect(records.map((r) => r.record.event.id).sort()).toEqual(events.map((e) => e.id).sort());
    for (const partition of new Set(records.map((r) => r.partition))) {
      const chain = records.filter((r) => r.partition === partition).sort((a, b) => Number(a.offset - b.offset));
      // Contiguous seqs, each record linked to the one before it.
      chain.forEach((r, i) => {
        expect(r.record.seq).toBe(i + 1);
        if (i > 0) expect(r.record.prev).toBe(chain[i - 1].record.hash);
      });
      // In the order appended, per tenant (one tenant per partition here, or both in one).
      for (const tenant of new Set(chain.map((r) => r.record.event.tenantId))) {
        expect(chain.filter((r) => r.record.event.tenantId === tenant).map((r) => r.record.event.id)).toEqual(
          events.filter((e) => e.tenantId === tenant).map((e) => e.id),
        );
      }
      // More than one transaction: a commit marker takes an offset between two of them.
      const gaps = chain.slice(1).filter((r, i) => r.offset - chain[i].offset > 1n).length;
      if (chain.length * 100_000 > 1_000_000) expect(gaps).toBeGreaterThan(0);
    }
  }, 90_000);

  it('writes a record larger than Kafka\'s default 1 MB message size alone, between others, without stalling', async () => {
    const make = (n: number, size: number) =>
      buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: 'cw-big', actor: { type: 'agent', id: `agent-${n}` }, data: { n, blob: 'y'.repeat(size) } });
    const events = [make(1, 10), make(2, 1_300_000), make(3, 10)];
    const before = await endOffsets(admin, settings.topic);
    await Promise.all(events.map((e) => writer!.append(e)));
    const read = await recordsOf(settings.topic, events.length, before);
    expect(read.map((r) => r.event.id)).toEqual(events.map((e) => e.id));
    expect(read.map((r) => r.seq)).toEqual([read[0].seq, read[0].seq + 1, read[0].seq + 2]);
    expect(read[1].prev).toBe(read[0].hash);
    expect(read[2].prev).toBe(read[1].hash);
  }, 60_000);

  it('chains events the index cannot hold (year-0 time, NUL byte), quarantines their index rows with an alert, and goes on indexing', async () => {
    const make = (n: number, over: Partial<EventEnvelope> = {}): EventEnvelope => ({
      ...buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: 'cw-quarantine', actor: { type: 'agent', id: `agent-${n}` }, data: { n } }),
      ...over,
    });
    const yearZero = make(1, { occurredAt: '0000-01-01T00:00:00.000Z' });
    const nul = make(2, { actor: { type: 'agent', id: 'agent\u0000nul' } });
    const normal = make(3);
    const before = await endOffsets(admin, settings.topic);
    await Promise.all([yearZero, nul, normal].map((e) => writer!.append(e)));
    const q = db.dataSource.manager;
    // The normal event is indexed within seconds, the two others quarantined, once each.
    const indexed = await eventually(async () => {
      const rows: Array<{ event_id: string }> = await q.query(`SELECT event_id::text FROM ${db.schema}.audit_records WHERE event_id = $1`, [normal.id]);
      return rows.length === 1 && rows;
    }, 10_000, 200);
    expect(indexed).toHaveLength(1);
    const held: Array<{ event_id: string; reasons: string[] }> = await q.query(`SELECT event_id::text, reasons FROM ${db.schema}.audit_index_quarantine ORDER BY seq`);
    expect(held).toEqual([
      { event_id: yearZero.id, reasons: ['occurred_at_out_of_range'] },
      { event_id: nul.id, reasons: ['unstorable_actor_id'] },
    ]);
    expect(quarantineAlerts.map((r) => r.row.eventId)).toEqual([yearZero.id, nul.id]);
    // All three are in the chain (the record of truth), in order.
    const read = await recordsOf(settings.topic, 3, before);
    expect(read.map((r) => r.event.id)).toEqual([yearZero.id, nul.id, normal.id]);
    // Ingest goes on; a redelivery of a quarantined event is recognised (not chained twice).
    const after = make(4);
    await writer!.append(nul);
    await writer!.append(after);
    await eventually(async () => {
      const rows: unknown[] = await q.query(`SELECT 1 FROM ${db.schema}.audit_records WHERE event_id = $1`, [after.id]);
      return rows.length === 1;
    }, 10_000, 200);
    const again = await recordsOf(settings.topic, 4, before);
    expect(again.map((r) => r.event.id)).toEqual([yearZero.id, nul.id, normal.id, after.id]);
    expect(quarantineAlerts).toHaveLength(2);
  }, 60_000);

  it('stops when deactivated while recovering (it used to wait for work forever, holding up the lease hand-over), and writes again once activated', async () => {
    const own = ownTopic('r');
    const { topic } = own;
    const index = new RecordIndex(new PgEventStore(db.dataSource, db.schema), new RecordsRepository(`${db.schema}.audit_records`), topic, () => undefined);
    // Recovery waits at a gate the test opens, so the deactivation lands inside it.
    const heads = index.heads.bind(index);
    let recovering: () => void = () => undefined;
    const inRecovery = new Promise<void>((resolve) => (recovering = resolve));
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    index.heads = async () => {
      recovering();
      await gate;
      return heads();
    };
    const w = writerOn(own, index, { sealAll: async (events: readonly EventEnvelope[]) => events as unknown as RecordedEvent[] });
    try {
      w.activate();
      await inRecovery;
      const stopped = w.deactivate('lease lost');
      open();
      const outcome = await Promise.race([stopped.then(() => 'stopped'), sleep(15_000).then(() => 'still waiting')]);
      expect(outcome).toBe('stopped');
      expect(w.status()).toMatchObject({ state: 'inactive', reason: 'lease lost' });

      index.heads = heads;
      w.activate();
      const event = buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: 'cw-again', actor: { type: 'agent', id: 'agent-1' }, data: { n: 1 } });
      await w.append(event);
      const read = await recordsOf(topic, 1);
      expect(read.map((r) => r.event.id)).toEqual([event.id]);
    } finally {
      await w.deactivate('test over');
      await admin.deleteTopics({ topics: [own.topic, own.checkpointTopic] }).catch(() => undefined);
    }
  }, 60_000);
  it('chains a producer-sealed personal member as given; one that fails its check is refused as a forgery (its report takes its place), the rest of the batch chained', async () => {
    const own = ownTopic('s');
    const { topic } = own;
    const transactions = new PgEventStore(db.dataSource, db.schema);
    const personal = new PersonalData(new SubjectKeysRepository(`${db.schema}.audit_subject_keys`), KeyEncryptionKey.fromBytes(randomBytes(32)), transactions);
    const w = writerOn(own, new RecordIndex(transactions, new RecordsRepository(`${db.schema}.audit_records`), topic, () => undefined), personal);
    const authCtx: EventFactoryContext = { source: 'auth', now: () => new Date(), newId: () => newEventId() };
    const signedIn = (userId: string) =>
      buildEvent(authCtx, { type: 'auth.user.signed-in', tenantId: 'cw-sealed', actor: { type: 'user', id: userId }, data: { userId }, personal: { subjectId: userId, data: { sourceAddress: '192.0.2.9' } } });
    const producerSealed = async (e: EventEnvelope): Promise<EventEnvelope> => {
      const [sealed] = await personal.sealFor([{ id: e.id, type: e.type, tenantId: e.tenantId, data: e.data, personal: e.personal as Personal }]);
      return { ...e, personal: sealed };
    };
    const good = await producerSealed(signedIn('u-good'));
    const plaintext = signedIn('u-plain');
    const moved = { ...signedIn('u-good'), personal: good.personal }; // u-good's blob on another event
    try {
      w.activate();
      const delivery = { subject: 'palisade.events.auth.user.signed-in', streamSequence: 42, consumer: 'audit-audit-log' };
      await Promise.all([w.append(good), w.append(moved, delivery), w.append(plaintext)]);
      const read = await recordsOf(topic, 3);
      const ids = read.map((r) => r.event.id);
      expect(ids).toContain(good.id);
      expect(ids).toContain(plaintext.id);
      expect(ids).not.toContain(moved.id);
      expect(read.find((r) => r.event.id === good.id)!.event).toEqual(good);
      const report = read.find((r) => r.event.type === 'audit.security.event-forgery-detected')!.event;
      expect(report).toMatchObject({
        source: 'audit',
        tenantId: 'system',
        data: { eventId: moved.id, claimedType: 'auth.user.signed-in', publisher: 'auth', consumer: 'audit-audit-log', streamSequence: 42, problems: [expect.stringMatching(/does not open/)] },
      });
      expect(JSON.stringify(report)).not.toMatch(/u-good|192\.0\.2\.9/);
      expect(await personal.openAll(read.map((r) => r.event))).toEqual(
        read.map((r) => (r.event.id === good.id ? { subjectId: 'u-good', data: { sourceAddress: '192.0.2.9' } } : r.event.id === plaintext.id ? { subjectId: 'u-plain', data: { sourceAddress: '192.0.2.9' } } : undefined)),
      );
    } finally {
      await w.deactivate('test over');
      await admin.deleteTopics({ topics: [own.topic, own.checkpointTopic] }).catch(() => undefined);
    }
  }, 60_000);
});
