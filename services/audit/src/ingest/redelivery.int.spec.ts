import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { AuditRecord, RecordedEvent } from '@palisade/audit-log';
import { buildEvent, EVENTS_STREAM, eventSubject, newEventId, type EventEnvelope, type EventFactoryContext } from '@palisade/contracts';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import { connectNats, DurableEventConsumer, JetStreamEventPublisher, type NatsConnection } from '@palisade/nats';
import type { Logger } from '@palisade/observability';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { ServiceIdentity } from '@palisade/pki';
import { createTestSchema, eventually, infra, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { endOffsets, readRange, type TopicSettings } from './audit-topic';
import { ChainWriter } from './chain-writer';
import { indexQuarantineMigration } from './index-quarantine.migration';
import type { IndexRow } from './index-rows';
import { ingestMigration } from './ingest.migration';
import { RecordIndex } from './record-index';
import { RecordsRepository } from './records.repository';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;
const ctx: EventFactoryContext = { source: 'billing', now: () => new Date(), newId: () => newEventId() };
const EVENTS = 40;

type Index = Pick<RecordIndex, 'knownEventIds' | 'heads' | 'clear' | 'index' | 'eventIdCount' | 'eachEventId'>;

/**
 * Exactly once against the topic, forced deterministically: events go through a real
 * JetStream durable (DurableEventConsumer) into the chain writer; the first delivery of
 * each event is committed to Kafka and then its acknowledgement "fails" (the handler
 * throws after the commit, so the consumer naks it), and JetStream redelivers it. Each
 * redelivery must be recognised as already in the topic and acknowledged without a second
 * record: while its index row is not yet written (the writer's memory), once it is
 * (the id filter, then PostgreSQL), and by a new writer after the first died between
 * commit and index (the topic, read back by recovery, then the filter loaded from the
 * index). Without the de-duplication against the topic (only the in-batch check), or
 * without committed ids added to the filter, every event of these tests is chained twice.
 */
describe('ChainWriter: redelivery of events committed to Kafka but not acknowledged to JetStream', () => {
  let identity: ServiceIdentity;
  let kafka: Kafka;
  let admin: Admin;
  let nc: NatsConnection;
  let publisher: JetStreamEventPublisher;
  let db: TestSchema;
  let privateKey: KeyObject;
  const suffix = randomBytes(4).toString('hex');
  const topics: string[] = [];
  const writers: ChainWriter[] = [];
  const consumers: DurableEventConsumer[] = [];

  beforeAll(async () => {
    identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity, clientId: 'audit-redelivery-int', logLevel: 'error' });
    admin = kafka.admin();
    await admin.connect();
    nc = await connectNats({ servers: infra('NATS_URL'), identity, name: `audit-redelivery-int-${suffix}` });
    publisher = new JetStreamEventPublisher(nc);
    db = await createTestSchema('auditrd');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), indexQuarantineMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    privateKey = generateKeyPairSync('ed25519').privateKey;
  }, 60_000);

  afterAll(async () => {
    for (const c of consumers) await c.stop().catch(() => undefined);
    for (const w of writers) await w.deactivate('test over').catch(() => undefined);
    const jsm = await nc?.jetstreamManager();
    for (const c of consumers) await jsm?.consumers.delete(EVENTS_STREAM, c.durable).catch(() => undefined);
    await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
    publisher?.close();
    await nc?.drain();
    await db?.drop();
    identity?.stop();
  }, 60_000);

  function settingsOf(name: string): TopicSettings {
    const topic = `palisade.audit.rdtest-${suffix}-${name}`;
    topics.push(topic, `${topic}-checkpoints`);
    return { topic, checkpointTopic: `${topic}-checkpoints`, partitions: 2, replicationFactor: 1, minInsyncReplicas: 1, retentionMs: 3_600_000 };
  }

  function realIndex(settings: TopicSettings): RecordIndex {
    return new RecordIndex(new PgEventStore(db.dataSource, db.schema), new RecordsRepository(`${db.schema}.audit_records`), settings.topic);
  }

  function writerOf(settings: TopicSettings, index: Index): ChainWriter {
    const writer = new ChainWriter({
      kafka,
      admin,
      settings,
      transactionalId: `palisade-audit-writer-${settings.topic}`,
      index,
      sealer: { sealAll: async (events: readonly EventEnvelope[]) => events as unknown as RecordedEvent[] },
      signer: { current: async () => ({ kid: 'test', privateKey }) },
      logger: quiet,
    });
    writers.push(writer);
    return writer;
  }

  /**
   * A durable of its own on this test's tenant: `handler` gets each delivery; its first
   * delivery of an event is failed by the test after `handler` resolved (the lost ack).
   */
  async function consume(name: string, tenantId: string, handler: (event: EventEnvelope, deliveryCount: number) => Promise<void>): Promise<{ committedOnce: Set<string>; acknowledged: Set<string>; events: EventEnvelope[] }> {
    const committedOnce = new Set<string>();
    const acknowledged = new Set<string>();
    const consumer = new DurableEventConsumer({
      nc,
      service: 'audit',
      consumer: `rdtest-${suffix}-${name}`,
      filterSubjects: eventSubject('billing.usage.recorded'),
      deliverPolicy: 'new',
      maxDeliver: 1000,
      backoffMs: [200],
      ackWaitMs: 30_000,
      concurrency: 100,
      batchSize: 100,
      onForgery: async () => undefined,
      handler: async (event, delivery) => {
        if (event.tenantId !== tenantId) return;
        await handler(event, delivery.deliveryCount);
        if (!committedOnce.has(event.id)) {
          committedOnce.add(event.id);
          throw new Error('acknowledgement lost after the Kafka commit (forced by the test)');
        }
        acknowledged.add(event.id);
      },
    });
    consumers.push(consumer);
    await consumer.start();
    const events = Array.from({ length: EVENTS }, (_, n) =>
      buildEvent(ctx, { type: 'billing.usage.recorded', tenantId, actor: { type: 'agent', id: `agent-${n}` }, data: { n } }),
    );
    await publisher.publish(events);
    return { committedOnce, acknowledged, events };
  }

  /** The writer tells fresh ids from memory (its id filter is loaded). */
  async function filterLoaded(writer: ChainWriter): Promise<void> {
    await eventually(async () => writer.status().dedup === 'memory', 20_000, 50);
  }

  /** The real index with `index()` replaced. */
  function indexWith(real: RecordIndex, index: Index['index']): Index {
    return {
      knownEventIds: (ids) => real.knownEventIds(ids),
      heads: () => real.heads(),
      clear: () => real.clear(),
      eventIdCount: () => real.eventIdCount(),
      eachEventId: (onPage, pageSize) => real.eachEventId(onPage, pageSize),
      index,
    };
  }

  async function eventIdsIn(settings: TopicSettings): Promise<string[]> {
    const ids: string[] = [];
    await readRange(kafka, settings.topic, new Map(), await endOffsets(admin, settings.topic), async (batch) => {
      for (const r of batch) ids.push((JSON.parse(r.value) as AuditRecord).event.id);
    }, { groupPrefix: 'audit-rd-int' });
    return ids;
  }

  /**
   * Every event acknowledged (after its redelivery), then each id exactly once in the topic.
   * A commit returns before the broker has written its markers, so a transaction becomes
   * readable (read_committed) a moment later: a last event of the same tenant (same
   * partition) is chained after every acknowledgement, and the topic is read once it shows;
   * every transaction committed before it is readable by then, a second record of any
   * event included.
   */
  async function expectEachOnce(settings: TopicSettings, writer: () => ChainWriter, run: { acknowledged: Set<string>; events: EventEnvelope[] }): Promise<void> {
    await eventually(async () => run.acknowledged.size === run.events.length, 30_000, 100);
    const last = buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: run.events[0].tenantId, actor: { type: 'agent', id: 'last' }, data: { n: -1 } });
    await writer().append(last);
    const ids = await eventually(async () => {
      const found = await eventIdsIn(settings);
      return found.includes(last.id) && found;
    });
    expect(ids.filter((id) => id !== last.id).sort()).toEqual(run.events.map((e) => e.id).sort());
  }

  it('redelivered before its index row is written: recognised from the writer\'s memory, acknowledged, no second record', async () => {
    const settings = settingsOf('memory');
    // The index rows wait until every redelivery has been handled.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const real = realIndex(settings);
    const writer = writerOf(settings, indexWith(real, (rows) => gate.then(() => real.index(rows))));
    writer.activate();
    await filterLoaded(writer);
    const run = await consume('memory', `rd-${suffix}-memory`, (event) => writer.append(event));
    await eventually(async () => run.acknowledged.size === run.events.length, 30_000, 100);
    expect(run.committedOnce.size).toBe(EVENTS);
    open();
    await expectEachOnce(settings, () => writer, run);
  }, 90_000);

  it('redelivered once its index row is written: recognised, acknowledged, no second record', async () => {
    const settings = settingsOf('index');
    const indexed = new Set<string>();
    const real = realIndex(settings);
    const writer = writerOf(
      settings,
      indexWith(real, async (rows) => {
        await real.index(rows);
        for (const r of rows) indexed.add(r.eventId);
      }),
    );
    writer.activate();
    await filterLoaded(writer);
    const run = await consume('index', `rd-${suffix}-index`, async (event, deliveryCount) => {
      await writer.append(event);
      // The lost ack surfaces only once the record is indexed.
      if (deliveryCount === 1) await eventually(async () => indexed.has(event.id), 10_000, 20);
    });
    await expectEachOnce(settings, () => writer, run);
    // The last event's row too (indexed after its commit).
    await eventually(async () => indexed.size === EVENTS + 1, 10_000, 20);
    const rows: unknown[] = await db.dataSource.manager.query(`SELECT 1 FROM ${db.schema}.audit_records WHERE topic = $1`, [settings.topic]);
    expect(rows).toHaveLength(EVENTS + 1);
  }, 90_000);

  it('redelivered to a new writer after the first died between the Kafka commit and its index: recovered from the topic, no second record', async () => {
    const settings = settingsOf('restart');
    const real = realIndex(settings);
    // The first writer "dies" after each commit: its index rows are never written.
    const lost: IndexRow[] = [];
    const first = writerOf(
      settings,
      indexWith(real, async (rows) => {
        lost.push(...rows);
      }),
    );
    first.activate();
    await filterLoaded(first);
    let current = first;
    let restarted!: () => void;
    const replaced = new Promise<void>((resolve) => (restarted = resolve));
    const run = await consume('restart', `rd-${suffix}-restart`, async (event, deliveryCount) => {
      // Redeliveries reach only the new writer.
      if (deliveryCount > 1) await replaced;
      await current.append(event);
    });
    await eventually(async () => run.committedOnce.size === EVENTS, 30_000, 100);
    await first.deactivate('killed between commit and acknowledgement (test)');
    expect(lost.length).toBe(EVENTS);
    const rows: unknown[] = await db.dataSource.manager.query(`SELECT 1 FROM ${db.schema}.audit_records WHERE topic = $1`, [settings.topic]);
    expect(rows).toHaveLength(0);
    // A new writer, nothing in memory, the index behind the topic: its recovery fences the
    // first and indexes what the topic holds beyond the index.
    current = writerOf(settings, real);
    current.activate();
    await filterLoaded(current);
    restarted();
    await expectEachOnce(settings, () => current, run);
  }, 90_000);
});
