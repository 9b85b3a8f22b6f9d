import { buildEvent, isSealedPersonal, PalisadeError, systemEventContext, type EventEnvelope, type Personal, type PersonalSealer } from '@palisade/contracts';
import { CommandHandler, type Command, type Decider, type DomainEvent, type InlineProjection } from '@palisade/eventsourcing';
import type { DataSource } from 'typeorm';
import { PgEventStore } from './pg-event-store';

type Callback = (err: Error | null, result: unknown) => void;

/**
 * PgEventStore's sealing without PostgreSQL: a fake pg pool (the one under the data source,
 * which the store's transactions use) that records every statement, so what would reach the
 * `events` table is the INSERT's envelope parameter (the JSON array of the events).
 */
class FakeConnection {
  readonly inserted: EventEnvelope[] = [];
  readonly statements: string[] = [];
  private readonly client = {
    // as node-postgres: (text or config, values?, callback?), or a Query object with its callback; a promise without a callback
    query: (query: string | { text: string; values?: unknown[]; callback?: Callback }, valuesOrCallback?: unknown[] | Callback, last?: Callback) => {
      const values = Array.isArray(valuesOrCallback) ? valuesOrCallback : typeof query === 'string' ? [] : (query.values ?? []);
      const result = this.answer(typeof query === 'string' ? query : query.text, values);
      const callback = last ?? (typeof valuesOrCallback === 'function' ? valuesOrCallback : typeof query !== 'string' ? query.callback : undefined);
      if (callback) {
        void result.then((r) => callback(null, r));
        return query;
      }
      return result;
    },
    connection: { parsedStatements: {} },
    on: () => undefined,
    removeListener: () => undefined,
    release: () => this.released(),
  };
  /** Statements the pool ran on a connection of its own, with a callback (node-postgres's callback API) or without. */
  readonly poolStatements: Array<{ callback: boolean }> = [];
  readonly driver: { master?: { connect(): Promise<unknown>; query(query: string | { text: string; values?: unknown[] }, valuesOrCallback?: unknown[] | Callback, last?: Callback): unknown } } = {
    master: {
      connect: async () => this.client,
      query: (query, valuesOrCallback, last) => {
        this.poolStatements.push({ callback: typeof valuesOrCallback === 'function' || last !== undefined });
        return this.client.query(query, valuesOrCallback, last);
      },
    },
  };
  /** What happens when a transaction gives its connection back. */
  released: () => void = () => undefined;

  private async answer(sql: string, params: unknown[]): Promise<{ command: string; rows: unknown[] }> {
    const inserts = sql.includes('INSERT INTO');
    this.statements.push(inserts ? 'INSERT' : sql.trim().split(/\s+/)[0]);
    const tag = /^(BEGIN|COMMIT|ROLLBACK)\b/.exec(sql.trim());
    if (tag) return { command: tag[1], rows: [] };
    if (!inserts) return { command: 'SELECT', rows: sql.includes('max(stream_version)') ? [{ version: 0 }] : [] };
    const envelopes = JSON.parse(params.find((p): p is string => typeof p === 'string' && p.startsWith('[')) ?? '[]') as EventEnvelope[];
    this.inserted.push(...envelopes);
    return { command: 'SELECT', rows: [{ version: 0, appended: envelopes.length }] };
  }
  asDataSource(): DataSource {
    return this as unknown as DataSource;
  }
}

const SEALED = { keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'c2VhbGVkLWJ5LWF1ZGl0' };

/** Seals as the audit service would (opaque blob), counting its requests. */
class FakeSealer implements PersonalSealer {
  requests: EventEnvelope[][] = [];
  async seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    this.requests.push([...events]);
    return events.map((e) => (e.personal && !isSealedPersonal(e.personal) ? { ...e, personal: { subjectId: e.personal.subjectId, ...SEALED } } : e));
  }
}

type UserEvent = DomainEvent<'auth.user.registered', { userId: string }>;
type Register = Command<'register', { userId: string; email: string }>;
const users: Decider<{ registered: boolean }, Register, UserEvent> = {
  initialState: () => ({ registered: false }),
  decide: (c) => [{ type: 'auth.user.registered', data: { userId: c.data.userId }, personal: { subjectId: c.data.userId, data: { email: c.data.email } } }],
  evolve: () => ({ registered: true }),
};
const ctx = systemEventContext('auth');
const register = (userId: string): Register => ({
  type: 'register',
  data: { userId, email: `${userId}@example.com` },
  metadata: { tenantId: 'acme', actor: { type: 'user', id: userId }, now: new Date('2026-12-03T10:00:00.000Z') },
});
const event = (personal?: Personal): EventEnvelope =>
  buildEvent(ctx, { type: 'auth.user.registered', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { userId: 'u-1' }, ...(personal ? { personal } : {}) });

describe('PgEventStore sealing personal data (issue 10)', () => {
  it('stores only the sealed form; the inline projection gets the plaintext the decider made', async () => {
    const db = new FakeConnection();
    const sealer = new FakeSealer();
    const projected: EventEnvelope[] = [];
    const projection: InlineProjection = { name: 'users', handles: ['auth.user.registered'], apply: async (_tx, events) => void projected.push(...events) };
    const store = new PgEventStore(db.asDataSource(), 'auth', sealer);
    await new CommandHandler(store, users, { eventContext: ctx, projections: [projection] }).handle('user-u-1', register('u-1'));

    expect(db.inserted).toHaveLength(1);
    expect(db.inserted[0].personal).toEqual({ subjectId: 'u-1', ...SEALED });
    expect(JSON.stringify(db.inserted)).not.toContain('u-1@example.com');
    expect(projected[0].personal).toEqual({ subjectId: 'u-1', data: { email: 'u-1@example.com' } });
    expect(projected[0].id).toBe(db.inserted[0].id);
  });

  it('asks once per append, and not at all when no event has plaintext personal data', async () => {
    const db = new FakeConnection();
    const sealer = new FakeSealer();
    const store = new PgEventStore(db.asDataSource(), 'auth', sealer);
    await store.inTransaction((tx) => store.appendToStream(tx, 's-1', [event({ subjectId: 'u-1', data: { ip: '10.0.0.1' } }), event(), event({ subjectId: 'u-2', data: { ip: '10.0.0.2' } })], 0));
    expect(sealer.requests).toHaveLength(1);
    expect(db.inserted.map((e) => e.personal)).toEqual([{ subjectId: 'u-1', ...SEALED }, undefined, { subjectId: 'u-2', ...SEALED }]);

    await store.inTransaction((tx) => store.appendToStream(tx, 's-2', [event(), { ...event(), personal: { subjectId: 'u-3', ...SEALED } }], 0));
    expect(sealer.requests).toHaveLength(1);
    expect(db.inserted).toHaveLength(5);
  });

  it('fails closed: when the sealer throws, nothing is inserted and the error reaches the writer', async () => {
    const db = new FakeConnection();
    const down: PersonalSealer = { seal: async () => Promise.reject(new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable')) };
    const store = new PgEventStore(db.asDataSource(), 'auth', down);
    await expect(new CommandHandler(store, users, { eventContext: ctx }).handle('user-u-1', register('u-1'))).rejects.toMatchObject({
      code: 'unavailable',
      message: 'personal data cannot be sealed: the audit service is unavailable',
    });
    expect(db.statements).not.toContain('INSERT');
    expect(db.inserted).toEqual([]);
  });

  it('refuses a sealer answer that still holds plaintext or is not the same events', async () => {
    const db = new FakeConnection();
    const store = new PgEventStore(db.asDataSource(), 'auth', { seal: async (events) => [...events] });
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 's-1', [event({ subjectId: 'u-1', data: { ip: '10.0.0.1' } })], 0))).rejects.toMatchObject({ code: 'internal' });
    const dropping = new PgEventStore(db.asDataSource(), 'auth', { seal: async () => [] });
    await expect(dropping.inTransaction((tx) => dropping.appendToStream(tx, 's-2', [event({ subjectId: 'u-1', data: { ip: '10.0.0.1' } })], 0))).rejects.toMatchObject({ code: 'internal' });
    expect(db.inserted).toEqual([]);
  });
});

describe('PgEventStore single-statement commits', () => {
  it('run on the pool through the callback API, not TypeORM\'s query runner, and answer as before', async () => {
    const db = new FakeConnection();
    const store = new PgEventStore(db.asDataSource(), 'auth');
    await store.commitToNewStreams([
      { streamId: 's-1', event: event() },
      { streamId: 's-2', event: event() },
    ]);
    expect(db.inserted).toHaveLength(2);
    // node-postgres's promise API kept each statement's objects past the next scavenge (pg-transaction.ts, pgStatement)
    expect(db.poolStatements[0]).toEqual({ callback: true });
  });
});

describe('PgEventStore waking the relay after a commit', () => {
  it('a commit that races the data source being destroyed (no pool left to ring with) still succeeds', async () => {
    const db = new FakeConnection();
    // TypeORM's destroy() drops the pool: driver.master becomes undefined
    db.released = () => void (db.driver.master = undefined);
    const store = new PgEventStore(db.asDataSource(), 'auth');
    await expect(store.inTransaction((tx) => store.appendToStream(tx, 's-1', [event()], 0))).resolves.toEqual({ nextVersion: 1 });
    expect(db.inserted).toHaveLength(1);
    // the ring itself (not only runInTransaction's guard around hooks) has nothing to do without a pool
    expect(() => (store as unknown as { ring(): void }).ring()).not.toThrow();
  });
});
