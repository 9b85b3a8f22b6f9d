import { Client } from 'pg';
import { buildEvent, systemEventContext, type EventEnvelope, type EventPublisher } from '@palisade/contracts';
import { createTestSchema, eventually, type TestSchema } from '@palisade/testing';
import { OutboxRelay } from './outbox-relay';
import { PgEventStore } from './pg-event-store';
import { ident } from './data-source';

const ctx = systemEventContext('billing');
const event = (stream: string, n: number): EventEnvelope =>
  buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: 'acme', actor: { type: 'service', id: 'billing' }, data: { stream, n } });
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Records what reached "JetStream", de-duplicating by event id as JetStream does. */
class RecordingPublisher implements EventPublisher {
  readonly received: EventEnvelope[] = [];
  readonly ids = new Set<string>();
  calls = 0;
  failNext = 0;
  async publish(events: readonly EventEnvelope[]): Promise<void> {
    this.calls++;
    for (const e of events) {
      this.received.push(e);
      this.ids.add(e.id);
    }
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('connection to JetStream lost before the acks');
    }
  }
}

describe('OutboxRelay', () => {
  let db: TestSchema;
  let store: PgEventStore;
  const relays: OutboxRelay[] = [];
  const relay = (publisher: EventPublisher, extra: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {}) => {
    const r = new OutboxRelay({ connection: db.app, publisher, logger: quiet, pollIntervalMs: 50, standbyRetryMs: 100, ...extra });
    relays.push(r);
    r.start();
    return r;
  };
  const append = (stream: string, events: EventEnvelope[]) =>
    store.inTransaction((tx) => store.appendToStream(tx, stream, events, 'any'));

  beforeEach(async () => {
    db = await createTestSchema('relay');
    store = new PgEventStore(db.dataSource, db.schema);
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await db.drop();
  });

  it('holds back later commits until an earlier transaction ends, and skips nothing', async () => {
    const publisher = new RecordingPublisher();
    relay(publisher);
    // T1 appends first (lower position and transaction id) but commits last.
    const t1 = new Client(db.app);
    await t1.connect();
    await t1.query('BEGIN');
    const early = event('s-early', 1);
    await t1.query(
      `INSERT INTO ${ident(db.schema)}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       VALUES ('s-early', 1, $1, $2, 'acme', $3)`,
      [early.id, early.type, JSON.stringify(early)],
    );
    const late = event('s-late', 1);
    await append('s-late', [late]);
    await new Promise((r) => setTimeout(r, 300));
    expect(publisher.received).toEqual([]);
    await t1.query('COMMIT');
    await t1.end();
    await eventually(() => publisher.received.length === 2);
    expect(publisher.received.map((e) => e.id)).toEqual([early.id, late.id]);
  });

  it('relays every event of concurrent writers exactly once, in stream order', async () => {
    const publisher = new RecordingPublisher();
    relay(publisher, { batchSize: 97 });
    const writers = 8;
    const perWriter = 60;
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < perWriter; i++) await append(`s-${w}`, [event(`s-${w}`, i)]);
      }),
    );
    await eventually(() => publisher.received.length >= writers * perWriter, 20000);
    await new Promise((r) => setTimeout(r, 200));
    expect(publisher.received).toHaveLength(writers * perWriter);
    expect(publisher.ids.size).toBe(writers * perWriter);
    for (let w = 0; w < writers; w++) {
      const ns = publisher.received.filter((e) => e.data.stream === `s-${w}`).map((e) => e.data.n);
      expect(ns).toEqual(Array.from({ length: perWriter }, (_, i) => i));
    }
  });

  it('publishes a failed batch again (same ids) and never moves past it', async () => {
    const publisher = new RecordingPublisher();
    publisher.failNext = 2;
    relay(publisher);
    const events = [event('s-1', 1), event('s-1', 2), event('s-1', 3)];
    await append('s-1', events);
    await eventually(() => publisher.calls >= 3, 5000);
    await new Promise((r) => setTimeout(r, 150));
    // Three attempts of the same batch; downstream de-duplication by id keeps 3 events.
    expect(publisher.received.map((e) => e.id)).toEqual([...events, ...events, ...events].map((e) => e.id));
    expect(publisher.ids.size).toBe(3);
  });

  it('resumes after its checkpoint when restarted, and re-sends at most the unacknowledged batch', async () => {
    const first = new RecordingPublisher();
    const r1 = relay(first);
    await append('s-1', [event('s-1', 1), event('s-1', 2)]);
    await eventually(() => first.received.length === 2);
    await r1.stop();
    await append('s-1', [event('s-1', 3)]);
    const second = new RecordingPublisher();
    relay(second);
    await eventually(() => second.received.length === 1);
    await new Promise((r) => setTimeout(r, 150));
    expect(second.received.map((e) => e.data.n)).toEqual([3]);
  });

  it('runs one active relay at a time; a standby takes over when the active one dies', async () => {
    const a = new RecordingPublisher();
    const b = new RecordingPublisher();
    const ra = relay(a);
    await eventually(() => ra.status().state === 'active');
    const rb = relay(b);
    await eventually(() => rb.status().state === 'standby');
    await append('s-1', [event('s-1', 1)]);
    await eventually(() => a.received.length === 1);
    expect(b.received).toHaveLength(0);
    // Kill the active relay's database session: its advisory lock goes with it.
    const admin = new Client({ host: db.app.host, port: db.app.port, database: db.app.database, user: 'postgres' });
    await admin.connect();
    const killed = await admin.query(
      `SELECT pg_terminate_backend(l.pid) AS ok FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = $1)
          AND l.pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = 'palisade-test-relay')`,
      [db.app.database],
    );
    await admin.end();
    expect(killed.rows.length).toBeGreaterThanOrEqual(1);
    await append('s-1', [event('s-1', 2)]);
    await eventually(() => a.received.length + b.received.length >= 2, 8000);
    const delivered = new Set([...a.received, ...b.received].map((e) => e.data.n));
    expect(delivered).toEqual(new Set([1, 2]));
    expect([ra.status().state, rb.status().state].filter((s) => s === 'active')).toHaveLength(1);
  });
});
