import { randomUUID } from 'node:crypto';
import { Client, type Notification } from 'pg';
import { buildEvent, systemEventContext, type EventEnvelope } from '@palisade/contracts';
import type { Transaction } from '@palisade/eventsourcing';
import { createTestSchema, type TestSchema } from '@palisade/testing';
import type { DataSource } from 'typeorm';
import { createDataSource, ident } from './data-source';
import { EVENTS_APPENDED_CHANNEL, NOTIFY_AFTER_COMMIT_SETTING } from './event-store.migration';
import { RING_GAP_MS } from './events-appended-ringer';
import { PgEventStore } from './pg-event-store';

const ctx = systemEventContext('billing');
const event = (n: number): EventEnvelope => buildEvent(ctx, { type: 'billing.usage.recorded', tenantId: 'acme', actor: { type: 'service', id: 'billing' }, data: { n } });

/**
 * The store's appends NOTIFY after their commit (a ring of their own), never inside their
 * transaction: each is heard exactly once, where an in-transaction NOTIFY and a ring would
 * be heard twice. The store has one connection, so its ring and then the test's marker run
 * on it in that order, and the marker, once heard, says every earlier notification was.
 */
describe('appends notify after their commit (issue 17)', () => {
  let db: TestSchema;
  let single: DataSource;
  let store: PgEventStore;
  let listener: Client;
  let heard: string[];
  let marker: (() => void) | undefined;
  let pid: number;

  beforeAll(async () => {
    db = await createTestSchema('notify');
    single = createDataSource({ ...db.app, poolSize: 1 });
    await single.initialize();
    store = new PgEventStore(single, db.schema);
    [{ pid }] = await single.query('SELECT pg_backend_pid() AS pid');
    listener = new Client(db.app);
    await listener.connect();
    listener.on('notification', (n: Notification) => {
      if (n.processId !== pid || n.channel !== EVENTS_APPENDED_CHANNEL) return; // other suites notify in this database too
      heard.push(n.payload ?? '');
      if (n.payload) marker?.();
    });
    await listener.query(`LISTEN ${EVENTS_APPENDED_CHANNEL}`);
  });
  afterAll(async () => {
    await listener?.end();
    await single?.destroy();
    await db.drop();
  });
  beforeEach(() => (heard = []));

  /** What the store's connection notified until now: the ring (queued first on the one connection) is heard before the marker. */
  const notified = async (): Promise<string[]> => {
    await new Promise((resolve) => setImmediate(resolve));
    const heardIt = new Promise<void>((resolve) => (marker = resolve));
    await Promise.all([heardIt, single.query('SELECT pg_notify($1, $2)', [EVENTS_APPENDED_CHANNEL, 'marker'])]);
    // the gap the ringer keeps after a ring began before this timer: past it, the next append's ring is not held back behind the next marker
    await new Promise((resolve) => setTimeout(resolve, 2 * RING_GAP_MS));
    return heard.splice(0);
  };
  const raw = (sql: { query: (text: string, values: unknown[]) => Promise<unknown> }) =>
    sql.query(`INSERT INTO ${ident(db.schema)}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope) VALUES ($1, 1, $2, 'test.appended', 'acme', '{}')`, [
      `raw-${randomUUID()}`,
      randomUUID(),
    ]);

  it('appendToStream: the transaction leaves the trigger quiet and is rung once, after its commit, when the event is visible', async () => {
    const stream = `s-${randomUUID()}`;
    const setting = await store.inTransaction(async (tx) => {
      await store.appendToStream(tx, stream, [event(1), event(2)], 0);
      const [{ s }] = await (tx as unknown as DataSource).query(`SELECT current_setting('${NOTIFY_AFTER_COMMIT_SETTING}', true) AS s`);
      return s;
    });
    expect(setting).toBe('on');
    expect(await notified()).toEqual(['', 'marker']);
    // rung after the commit: an outside reader that heard it sees the events
    const [{ n }] = await db.dataSource.query(`SELECT count(*)::int AS n FROM ${ident(db.schema)}.events WHERE stream_id = $1`, [stream]);
    expect(n).toBe(2);
  });

  it('appendToNewStreams, commitToNewStreams and commitToStream are each heard once', async () => {
    await store.inTransaction((tx) => store.appendToNewStreams(tx, [{ streamId: `n-${randomUUID()}`, event: event(3) }]));
    expect(await notified()).toEqual(['', 'marker']);
    await store.commitToNewStreams([{ streamId: `c-${randomUUID()}`, event: event(4) }, { streamId: `c-${randomUUID()}`, event: event(5) }]);
    expect(await notified()).toEqual(['', 'marker']);
    const stream = `g-${randomUUID()}`;
    await store.inTransaction((tx) => store.appendToStream(tx, stream, [event(6)], 0));
    await notified();
    const guard = () => `SELECT 1 AS one`;
    expect(await store.commitToStream(stream, [event(7)], 1, guard)).toEqual({ nextVersion: 2 });
    expect(await notified()).toEqual(['', 'marker']);
  });

  it('a rolled-back append rings nothing', async () => {
    await expect(
      store.inTransaction(async (tx) => {
        await store.appendToStream(tx, `r-${randomUUID()}`, [event(8)], 0);
        throw new Error('the decision failed after the append');
      }),
    ).rejects.toThrow('the decision failed');
    expect(await notified()).toEqual(['marker']);
  });

  it('an insert that did not set the setting still notifies in its transaction; one that did is silent', async () => {
    await raw(single);
    expect(await notified()).toEqual(['', 'marker']);
    await single.transaction(async (m) => {
      await m.query(`SELECT set_config('${NOTIFY_AFTER_COMMIT_SETTING}', 'on', true)`);
      await raw(m);
    });
    expect(await notified()).toEqual(['marker']);
  });

  it('an append in a transaction that is not the store\'s own keeps the trigger\'s NOTIFY (it cannot ring after a commit it does not see)', async () => {
    const setting = await single.transaction(async (m) => {
      await store.appendToStream(m as unknown as Transaction, `f-${randomUUID()}`, [event(9)], 0);
      const [{ s }] = await m.query(`SELECT current_setting('${NOTIFY_AFTER_COMMIT_SETTING}', true) AS s`);
      return s;
    });
    expect(setting ?? '').toBe('');
    expect(await notified()).toEqual(['', 'marker']);
  });
});
