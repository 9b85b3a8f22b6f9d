import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { buildEvent, ConcurrencyError, isSealedPersonal, PalisadeError, systemEventContext, type EventEnvelope, type PersonalSealer } from '@palisade/contracts';
import { createTestSchema, type TestSchema } from '@palisade/testing';
import { PgEventStore, runStatement } from './pg-event-store';
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

  it('refuses an append at the wrong expected version, naming the version found, and stores nothing of it', async () => {
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 'budget-1', [event(4)], 1))).rejects.toMatchObject(
      new ConcurrencyError('budget-1', 1, 3),
    );
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 'budget-1', [event(5)], 0))).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.inTransaction((tx) => store.readStream(tx, 'budget-1'))).version).toBe(3);
  });

  it("appends at 'any' after whatever is there, and an empty append only checks the version", async () => {
    expect(await store.inTransaction((tx) => store.appendToStream(tx, 'budget-any', [event(1)], 'any'))).toEqual({ nextVersion: 1 });
    expect(await store.inTransaction((tx) => store.appendToStream(tx, 'budget-any', [event(2), event(3)], 'any'))).toEqual({ nextVersion: 3 });
    expect(await store.inTransaction((tx) => store.appendToStream(tx, 'budget-any', [], 3))).toEqual({ nextVersion: 3 });
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 'budget-any', [], 2))).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.inTransaction((tx) => store.readStream(tx, 'budget-any'))).events.map((e) => [e.version, e.event.data.n])).toEqual([[1, 1], [2, 2], [3, 3]]);
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

  describe('commitToStream: the append and its read model in one statement', () => {
    /** A read model of the test's own: a row per stream with its version and a count, and one row per event. */
    const t = () => ident(db.schema);
    beforeAll(async () => {
      const owner = new Client({ host: db.owner.host, port: db.owner.port, database: db.owner.database, user: db.owner.user });
      await owner.connect();
      await owner.query(`CREATE TABLE ${t()}.counters (stream_id text PRIMARY KEY, version int NOT NULL, n int NOT NULL)`);
      await owner.query(`CREATE TABLE ${t()}.counted (event_id uuid PRIMARY KEY, stream_id text NOT NULL)`);
      await owner.query(`GRANT SELECT, INSERT, UPDATE ON ${t()}.counters, ${t()}.counted TO ${ident(db.app.user)}`);
      await owner.end();
    });
    const guard = (streamId: string, at: number) => (p: (v: unknown) => string) => `UPDATE ${t()}.counters SET version = ${p(at + 1)}, n = n + 1 WHERE stream_id = ${p(streamId)} AND version = ${p(at)} RETURNING 1`;
    const counted = (streamId: string, e: EventEnvelope) => (p: (v: unknown) => string) => `INSERT INTO ${t()}.counted (event_id, stream_id) VALUES (${p(e.id)}, ${p(streamId)})`;
    const state = async (streamId: string) => ({
      stream: (await store.inTransaction((tx) => store.readStream(tx, streamId))).events.map((e) => [e.version, e.event.data.n]),
      row: ((await db.dataSource.query(`SELECT version, n FROM ${t()}.counters WHERE stream_id = $1`, [streamId])) as Array<{ version: number; n: number }>)[0],
      counted: Number(((await db.dataSource.query(`SELECT count(*) AS c FROM ${t()}.counted WHERE stream_id = $1`, [streamId])) as Array<{ c: string }>)[0].c),
    });
    const started = async (streamId: string) => {
      await store.inTransaction((tx) => store.appendToStream(tx, streamId, [event(1)], 0));
      await db.dataSource.query(`INSERT INTO ${t()}.counters VALUES ($1, 1, 0)`, [streamId]);
    };

    it('stores the events at the next versions and runs the guard and the other statements, all at once', async () => {
      await started('count-1');
      const e = event(2);
      expect(await store.commitToStream('count-1', [e], 1, guard('count-1', 1), [counted('count-1', e)])).toEqual({ nextVersion: 2 });
      expect(await state('count-1')).toEqual({ stream: [[1, 1], [2, 2]], row: { version: 2, n: 1 }, counted: 1 });
    });

    it('stores nothing, and runs none of it, when the guard finds no row at the version or the stream is not at it (ConcurrencyError)', async () => {
      await started('count-2');
      const e = event(3);
      // the row is at 1, the guard asks for 5: nothing
      await expect(store.commitToStream('count-2', [e], 1, guard('count-2', 5), [counted('count-2', e)])).rejects.toMatchObject({ name: 'ConcurrencyError', actualVersion: 1 });
      // the guard finds its row, the stream is not at the expected version (behind it): nothing either, no gap
      await db.dataSource.query(`UPDATE ${t()}.counters SET version = 3 WHERE stream_id = 'count-2'`);
      await expect(store.commitToStream('count-2', [e], 3, guard('count-2', 3), [counted('count-2', e)])).rejects.toBeInstanceOf(ConcurrencyError);
      expect(await state('count-2')).toEqual({ stream: [[1, 1]], row: { version: 3, n: 0 }, counted: 0 });
    });

    it('lets one of concurrent commits at one version win and refuses the others whole, also against a transaction holding the row (no deadlock)', async () => {
      await started('count-3');
      const tries = Array.from({ length: 5 }, (_, i) => event(10 + i));
      // a writer that locks the row first, then appends, as a command handler on a locked row does
      const locked = store.inTransaction(async (tx) => {
        await runStatement(tx, (p) => `SELECT 1 FROM ${t()}.counters WHERE stream_id = ${p('count-3')} FOR UPDATE`);
        await new Promise((r) => setTimeout(r, 100));
        await store.appendToStream(tx, 'count-3', [event(9)], 1);
        await runStatement(tx, guard('count-3', 1));
      });
      await new Promise((r) => setTimeout(r, 20));
      const results = await Promise.allSettled([locked, ...tries.map((e) => store.commitToStream('count-3', [e], 1, guard('count-3', 1), [counted('count-3', e)]))]);
      expect(results[0].status).toBe('fulfilled');
      for (const r of results.slice(1)) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      expect(await state('count-3')).toEqual({ stream: [[1, 1], [2, 9]], row: { version: 2, n: 1 }, counted: 0 });
      // and among themselves, without the locked writer: exactly one
      const again = await Promise.allSettled(tries.map((e) => store.commitToStream('count-3', [e], 2, guard('count-3', 2), [counted('count-3', e)])));
      expect(again.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const after = await state('count-3');
      expect(after.stream).toHaveLength(3);
      expect(after).toMatchObject({ row: { version: 3, n: 2 }, counted: 1 });
    });
  });

  it('keeps an event of a few KB in its row: nothing compressed, nothing in the TOAST table', async () => {
    // ~6 KB that does not compress, like a model call's sealed texts
    const big = buildEvent(ctx, { type: 'billing.budget.spent', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { n: 1, blob: randomBytes(4400).toString('base64url') } });
    await store.inTransaction((tx) => store.appendToStream(tx, 'budget-big', [big], 0));
    const c = new Client({ ...db.owner });
    await c.connect();
    try {
      const { rows } = await c.query(
        `SELECT pg_column_size(envelope) AS stored, octet_length(envelope::text) AS text_length, pg_relation_size(t.reltoastrelid) AS toast_bytes
           FROM ${ident(db.schema)}.events, pg_class t WHERE event_id = $1 AND t.oid = '${ident(db.schema)}.events'::regclass`,
        [big.id],
      );
      expect(Number(rows[0].text_length)).toBeGreaterThan(6000);
      // stored whole in the row: neither a TOAST pointer (18 bytes) nor compressed
      expect(Number(rows[0].stored)).toBeGreaterThan(6000);
      expect(Number(rows[0].toast_bytes)).toBe(0);
    } finally {
      await c.end();
    }
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
