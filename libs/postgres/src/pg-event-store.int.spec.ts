import { Client } from 'pg';
import { buildEvent, ConcurrencyError, systemEventContext, type EventEnvelope } from '@palisade/contracts';
import { createTestSchema, type TestSchema } from '@palisade/testing';
import { PgEventStore } from './pg-event-store';
import { ident } from './data-source';

const ctx = systemEventContext('billing');
const event = (n: number): EventEnvelope =>
  buildEvent(ctx, { type: 'billing.budget.spent', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { n } });

describe('PgEventStore', () => {
  let db: TestSchema;
  let store: PgEventStore;

  beforeAll(async () => {
    db = await createTestSchema('es');
    store = new PgEventStore(db.dataSource, db.schema);
  });
  afterAll(() => db.drop());

  it('appends with expected versions and reads the stream back in order', async () => {
    await store.inTransaction((tx) => store.appendToStream(tx, 'budget-1', [event(1), event(2)], 0));
    const next = await store.inTransaction((tx) => store.appendToStream(tx, 'budget-1', [event(3)], 2));
    expect(next.nextVersion).toBe(3);
    const read = await store.inTransaction((tx) => store.readStream(tx, 'budget-1'));
    expect(read.version).toBe(3);
    expect(read.events.map((e) => [e.version, e.event.data.n])).toEqual([[1, 1], [2, 2], [3, 3]]);
    expect(await store.inTransaction((tx) => store.readStream(tx, 'budget-none'))).toEqual({ version: 0, events: [] });
  });

  it('refuses an append at the wrong expected version', async () => {
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 'budget-1', [event(4)], 1))).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
  });

  it('lets exactly one of two concurrent appends at the same version win', async () => {
    await store.inTransaction((tx) => store.appendToStream(tx, 'budget-race', [event(1)], 0));
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => store.inTransaction((tx) => store.appendToStream(tx, 'budget-race', [event(10 + i)], 1))),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'conflict' });
    }
    const read = await store.inTransaction((tx) => store.readStream(tx, 'budget-race'));
    expect(read.version).toBe(2);
  });

  it('refuses a malformed event before storing anything', async () => {
    const bad = { ...event(1), type: 'billing.budget' };
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 'budget-bad', [bad], 0))).rejects.toMatchObject({
      code: 'validation',
    });
    expect((await store.inTransaction((tx) => store.readStream(tx, 'budget-bad'))).version).toBe(0);
  });

  it('rolls the events back with the transaction', async () => {
    await expect(
      store.inTransaction(async (tx) => {
        await store.appendToStream(tx, 'budget-rollback', [event(1)], 0);
        throw new Error('state change failed');
      }),
    ).rejects.toThrow('state change failed');
    expect((await store.inTransaction((tx) => store.readStream(tx, 'budget-rollback'))).version).toBe(0);
  });

  describe('immutability in the database itself', () => {
    async function as(user: 'app' | 'owner', sql: string) {
      const c = new Client({ ...(user === 'app' ? db.app : db.owner), application_name: 'immutability-test' });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
    }
    const events = () => `${ident(db.schema)}.events`;

    it.each(['UPDATE %s SET tenant_id = $$evil$$', 'DELETE FROM %s', 'TRUNCATE %s'])(
      'the application role cannot run %s',
      async (statement) => {
        await expect(as('app', statement.replace('%s', events()))).rejects.toThrow(/permission denied/);
      },
    );

    it.each(['UPDATE %s SET tenant_id = $$evil$$', 'DELETE FROM %s', 'TRUNCATE %s'])(
      'even the owner cannot run %s',
      async (statement) => {
        await expect(as('owner', statement.replace('%s', events()))).rejects.toThrow(/append-only/);
      },
    );

    it('still holds every event afterwards', async () => {
      const read = await store.inTransaction((tx) => store.readStream(tx, 'budget-1'));
      expect(read.events.every((e) => e.event.tenantId === 'acme')).toBe(true);
      expect(read.version).toBe(3);
    });
  });
});
