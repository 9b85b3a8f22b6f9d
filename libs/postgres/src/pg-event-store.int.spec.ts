import { Client } from 'pg';
import { buildEvent, ConcurrencyError, isSealedPersonal, PalisadeError, systemEventContext, type EventEnvelope, type PersonalSealer } from '@palisade/contracts';
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

  it('appends one event to each of many new streams in one statement; an existing stream among them stores nothing', async () => {
    await store.inTransaction((tx) => store.appendToNewStreams(tx, [{ streamId: 'call-1', event: event(1) }, { streamId: 'usage-1', event: event(2) }, { streamId: 'call-2', event: event(3) }]));
    for (const [streamId, n] of [['call-1', 1], ['usage-1', 2], ['call-2', 3]] as const) {
      const read = await store.inTransaction((tx) => store.readStream(tx, streamId));
      expect(read.events.map((e) => [e.version, e.event.data.n])).toEqual([[1, n]]);
    }
    await expect(store.inTransaction((tx) => store.appendToNewStreams(tx, [{ streamId: 'call-3', event: event(4) }, { streamId: 'call-1', event: event(5) }]))).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.inTransaction((tx) => store.readStream(tx, 'call-3'))).version).toBe(0);
    expect((await store.inTransaction((tx) => store.readStream(tx, 'call-1'))).events).toHaveLength(1);
    await expect(store.inTransaction((tx) => store.appendToNewStreams(tx, [{ streamId: 'call-4', event: event(6) }, { streamId: 'call-4', event: event(7) }]))).rejects.toMatchObject({ code: 'validation' });
    expect((await store.inTransaction((tx) => store.readStream(tx, 'call-4'))).version).toBe(0);
  });

  it('commits one event to each of many new streams in one statement of its own; an existing stream among them stores nothing', async () => {
    await store.commitToNewStreams([{ streamId: 'own-1', event: event(21) }, { streamId: 'own-2', event: event(22) }]);
    const read = await store.inTransaction((tx) => store.readStream(tx, 'own-2'));
    expect(read.events.map((e) => [e.version, e.event.data.n])).toEqual([[1, 22]]);
    await expect(store.commitToNewStreams([{ streamId: 'own-3', event: event(23) }, { streamId: 'own-1', event: event(24) }])).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.inTransaction((tx) => store.readStream(tx, 'own-3'))).version).toBe(0);
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

  describe('personal data sealed before it is stored (issue 10)', () => {
    const sealedMember = (subjectId: string) => ({ subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'b3BhcXVlLWJsb2I' });
    const sealer: PersonalSealer = {
      seal: async (events) => events.map((e) => (e.personal && !isSealedPersonal(e.personal) ? { ...e, personal: sealedMember(e.personal.subjectId) } : e)),
    };
    const withPersonal = (n: number): EventEnvelope =>
      buildEvent(ctx, { type: 'billing.budget.spent', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { n }, personal: { subjectId: 'u-1', data: { email: 'carol@example.org', ip: '203.0.113.7' } } });
    const rows = async (streamId: string) =>
      ((await db.dataSource.query(`SELECT envelope::text AS envelope FROM ${ident(db.schema)}.events WHERE stream_id = $1 ORDER BY stream_version`, [streamId])) as Array<{ envelope: string }>).map((r) => r.envelope);

    it('the row holds the sealed member only; the stream reads back sealed', async () => {
      const sealing = new PgEventStore(db.dataSource, db.schema, sealer);
      await sealing.inTransaction((tx) => sealing.appendToStream(tx, 'budget-personal', [withPersonal(1), event(2)], 0));
      const stored = await rows('budget-personal');
      expect(stored).toHaveLength(2);
      expect(stored.join('\n')).not.toMatch(/carol@example\.org|203\.0\.113\.7/);
      expect(JSON.parse(stored[0]).personal).toEqual(sealedMember('u-1'));
      expect(JSON.parse(stored[1])).not.toHaveProperty('personal');
      const read = await sealing.inTransaction((tx) => sealing.readStream(tx, 'budget-personal'));
      expect(read.events[0].event.personal).toEqual(sealedMember('u-1'));
    });

    it('fails closed: when sealing fails nothing is stored, in that transaction or after it', async () => {
      const down = new PgEventStore(db.dataSource, db.schema, { seal: () => Promise.reject(new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable')) });
      await expect(down.inTransaction((tx) => down.appendToStream(tx, 'budget-unsealed', [event(1), withPersonal(2)], 0))).rejects.toMatchObject({ code: 'unavailable' });
      expect(await rows('budget-unsealed')).toEqual([]);
    });
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
