import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy, type NatsConnection } from 'nats';
import { buildEvent, systemEventContext, type EventEnvelope } from '@palisade/contracts';
import { connectNats } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { PgEventStore } from '@palisade/postgres';
import { createTestSchema, eventually, infra, type TestSchema } from '@palisade/testing';

// The outbox end to end: concurrent writers commit to the real event store while a
// relay process publishes to a real JetStream stream and is killed with SIGKILL
// several times mid-stream. Afterwards the stream holds every event exactly once.
const STREAM = `PALISADE_TEST_OUTBOX_${process.pid}`;
const PREFIX = `palisade.test.outbox.${process.pid}`;
const ctx = systemEventContext('billing');
const event = (w: number, n: number): EventEnvelope =>
  buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: 'acme', actor: { type: 'agent', id: `a-${w}` }, data: { w, n } });

describe('outbox relay to JetStream under a killed relay', () => {
  let db: TestSchema;
  let nc: NatsConnection;
  let identity: ServiceIdentity;

  beforeAll(async () => {
    db = await createTestSchema('ojs');
    identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    nc = await connectNats({ servers: infra('NATS_URL'), identity, name: 'outbox-jetstream-test' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: STREAM, subjects: [`${PREFIX}.>`], duplicate_window: 3600 * 1e9 });
  });

  afterAll(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await nc.drain();
    identity.stop();
    await db.drop();
  });

  function startRelay(): ChildProcess {
    return spawn(process.execPath, [join(__dirname, 'fixtures', 'relay-child.js'), JSON.stringify({ connection: db.app, stream: STREAM, subjectPrefix: PREFIX, batchSize: 200 })], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  }

  it('stores every event once, in stream order, although the relay died three times', async () => {
    const store = new PgEventStore(db.dataSource, db.schema);
    const writers = 6;
    const perWriter = 500;
    let relay = startRelay();
    const writing = Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i += 5) {
          const batch = Array.from({ length: 5 }, (_, k) => event(w, i + k));
          await store.inTransaction((tx) => store.appendToStream(tx, `usage-${w}`, batch, i));
        }
      }),
    );
    for (let kill = 0; kill < 3; kill++) {
      // Wait until this relay has published something, then kill it without warning.
      await new Promise<void>((resolve) => relay.stdout!.once('data', () => resolve()));
      await new Promise((r) => setTimeout(r, 20 + kill * 30));
      relay.kill('SIGKILL');
      await new Promise((r) => relay.once('exit', r));
      relay = startRelay();
    }
    await writing;
    const jsm = await nc.jetstreamManager();
    try {
      await eventually(async () => (await jsm.streams.info(STREAM)).state.messages >= writers * perWriter, 30000, 100);
      await new Promise((r) => setTimeout(r, 500));
      expect((await jsm.streams.info(STREAM)).state.messages).toBe(writers * perWriter);
    } finally {
      relay.kill('SIGKILL');
    }
    const consumer = await jsm.consumers.add(STREAM, { name: 'verify', ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
    const messages = await nc.jetstream().consumers.get(STREAM, consumer.name);
    const seen: EventEnvelope[] = [];
    while (seen.length < writers * perWriter) {
      const batch = await messages.fetch({ max_messages: 1000, expires: 2000 });
      for await (const m of batch) seen.push(m.json<EventEnvelope>());
    }
    expect(new Set(seen.map((e) => e.id)).size).toBe(writers * perWriter);
    for (let w = 0; w < writers; w++) {
      const ns = seen.filter((e) => e.data.w === w).map((e) => e.data.n);
      expect(ns).toEqual(Array.from({ length: perWriter }, (_, i) => i));
    }
  });
});
