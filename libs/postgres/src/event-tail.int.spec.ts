import { randomBytes } from 'node:crypto';
import { buildEvent, systemEventContext, type EventEnvelope, type EventPublisher } from '@palisade/contracts';
import { createTestSchema, eventually, terminateBackends, TEST_DATABASE, type TestSchema } from '@palisade/testing';
import type { DataSource } from 'typeorm';
import { createDataSource, type PgConnectionOptions } from './data-source';
import { EventTail } from './event-tail';
import { followerLagMs } from './follower';
import { OutboxRelay } from './outbox-relay';
import { PgEventStore } from './pg-event-store';

const ctx = systemEventContext('policy');
const event = (n: number): EventEnvelope =>
  buildEvent(ctx, { type: 'policy.role.defined', tenantId: 'acme', actor: { type: 'service', id: 'policy' }, data: { n } });
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * A failover or network blip terminates the backends of long-lived clients: each must
 * reconnect on its own, resume where it was, and skip nothing. Only this test's own
 * backends are terminated (a unique application name): other suites share the database.
 */
describe('long-lived clients after their backends are terminated', () => {
  let db: TestSchema;
  let app: PgConnectionOptions;
  let pool: DataSource;
  let store: PgEventStore;
  const append = (n: number) => store.inTransaction((tx) => store.appendToStream(tx, `s-${n}`, [event(n)], 'any'));

  beforeEach(async () => {
    db = await createTestSchema('tail');
    app = { ...db.app, applicationName: `palisade-kill-${randomBytes(4).toString('hex')}` };
    pool = createDataSource(app);
    await pool.initialize();
    store = new PgEventStore(pool, db.schema);
  });
  afterEach(async () => {
    await pool.destroy().catch(() => undefined);
    await db.drop();
  });

  it('the event tail reconnects, resumes from its position and delivers every event once, in order', async () => {
    const received: number[] = [];
    const tail = new EventTail({ connection: app, typePattern: 'policy.%', logger: quiet, pollIntervalMs: 50, onEvents: (es) => void received.push(...es.map((e) => e.data.n as number)) });
    await tail.start();
    try {
      await append(1);
      await eventually(() => received.length === 1);
      expect(await terminateBackends(TEST_DATABASE, app.applicationName)).toBeGreaterThanOrEqual(1);
      // The pool discards its broken connections; writes go on.
      await eventually(() => append(2).then(() => true), 5000);
      await append(3);
      await eventually(() => received.length >= 3, 8000);
      await tail.catchUp();
      expect(received).toEqual([1, 2, 3]);
      expect(tail.status().state).toBe('following');
      expect(followerLagMs(tail.status(), Date.now())).toBeLessThan(1000);
      // And again: every termination is survived, not only the first.
      await terminateBackends(TEST_DATABASE, app.applicationName);
      await eventually(() => append(4).then(() => true), 5000);
      await eventually(() => received.length >= 4, 8000);
      expect(received).toEqual([1, 2, 3, 4]);
    } finally {
      await tail.stop();
    }
  });

  it('the event tail reports its lag while it cannot read, and catchUp fails as unavailable instead of hanging', async () => {
    const tail = new EventTail({ connection: { ...app, port: 1 }, typePattern: 'policy.%', logger: quiet, onEvents: () => undefined });
    await expect(tail.start()).rejects.toThrow();
    expect(followerLagMs(tail.status(), Date.now())).toBe(Infinity);
    await expect(tail.catchUp()).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('the outbox relay reconnects, resumes from its stored checkpoint and publishes every event once', async () => {
    const published: number[] = [];
    const publisher: EventPublisher = { publish: async (es) => void published.push(...es.map((e) => e.data.n as number)) };
    const relay = new OutboxRelay({ connection: app, publisher, logger: quiet, pollIntervalMs: 50, standbyRetryMs: 100 });
    relay.start();
    try {
      await append(1);
      await eventually(() => published.length === 1);
      const caughtUp = relay.status().caughtUpAt!;
      expect(caughtUp).toBeGreaterThan(0);
      await terminateBackends(TEST_DATABASE, app.applicationName);
      await eventually(() => append(2).then(() => true), 5000);
      await append(3);
      await eventually(() => published.length >= 3, 8000);
      await new Promise((r) => setTimeout(r, 200));
      expect(published).toEqual([1, 2, 3]);
      expect(relay.status().state).toBe('active');
      expect(relay.status().caughtUpAt!).toBeGreaterThan(caughtUp);
    } finally {
      await relay.stop();
    }
  });
});
