import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { systemEventContext } from '@palisade/contracts';
import { createDataSource, PgEventStore, pgPoolOf } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { BudgetsRepository } from '../src/budgets/budgets.repository';
import { BudgetsService } from '../src/budgets/budgets.service';
import { billingMigrations } from '../src/billing.migration';
import { inlineParameters, LedgerRepository } from '../src/ledger/ledger.repository';
import { LedgerService } from '../src/ledger/ledger.service';

/**
 * Property test on real PostgreSQL: concurrent reservers, settles, retries, releases and
 * expiries against small budgets on three levels; after every round, posted + pending ≤
 * limit on every hard row, pending = what live holds hold, posted = what settled holds
 * posted = the sum of the usage lines, and a retry always gets its first answer.
 */
describe('ledger (PostgreSQL)', () => {
  let db: TestSchema;
  let clock = Date.parse('2026-12-03T10:00:00.000Z');
  const now = () => new Date(clock);
  const admin = { type: 'user' as const, id: 'alice' };
  let ledger: LedgerService;
  let budgets: BudgetsService;

  beforeAll(async () => {
    db = await createTestSchema('billing');
    const migrator = createDataSource(db.owner, billingMigrations.map((m) => m(db.schema, TEST_APP_ROLE)));
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    const store = new PgEventStore(db.dataSource, db.schema);
    ledger = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now, lanes: 3, maxBatch: 16 });
    budgets = new BudgetsService(store, new BudgetsRepository(db.schema), systemEventContext('billing'), now);
  });
  afterAll(() => db?.drop());

  async function invariants(tenantId: string) {
    const q = (sql: string) => db.dataSource.query(sql.replaceAll('$s', `"${db.schema}"`), [tenantId]);
    const over = await q(`SELECT * FROM $s.budget_periods WHERE tenant_id = $1 AND hard AND posted + pending > limit_micros`);
    expect(over).toEqual([]);
    const mismatched = await q(
      `SELECT a.level, a.subject_id, a.posted, a.pending, coalesce(sum(h.posted), 0) AS held_posted,
              coalesce(sum(h.amount) FILTER (WHERE h.status = 'held'), 0) AS held_pending
         FROM $s.budget_periods a
         LEFT JOIN $s.holds h ON h.tenant_id = a.tenant_id AND h.accounts @> jsonb_build_array(jsonb_build_object('budgetId', a.budget_id::text))
        WHERE a.tenant_id = $1
        GROUP BY a.level, a.subject_id, a.posted, a.pending
       HAVING a.posted <> coalesce(sum(h.posted), 0) OR a.pending <> coalesce(sum(h.amount) FILTER (WHERE h.status = 'held'), 0)`,
    );
    expect(mismatched).toEqual([]);
    const [sums] = await q(
      `SELECT (SELECT coalesce(sum(posted), 0) FROM $s.holds WHERE tenant_id = $1) AS holds,
              (SELECT coalesce(sum(posted_micros), 0) FROM $s.usage_lines WHERE tenant_id = $1) AS usage,
              (SELECT posted FROM $s.budget_periods WHERE tenant_id = $1 AND level = 'tenant') AS tenant`,
    );
    expect(sums.usage).toBe(sums.holds);
    expect(sums.tenant).toBe(sums.holds);
  }

  it('reserves on all three levels or none, naming the level; settles, releases; status', async () => {
    await budgets.set('t1', admin, { level: 'tenant', subjectId: 't1', limitMicros: '1000', period: 'month' });
    await budgets.set('t1', admin, { level: 'team', subjectId: 'platform', limitMicros: '500', period: 'month' });
    await budgets.set('t1', admin, { level: 'agent', subjectId: 'bot', limitMicros: '300', period: 'day', timeZone: 'Asia/Shanghai' });
    const r = (id: string, amount: string) => ledger.reserve('llm-router', { tenantId: 't1', requestId: id, agentId: 'bot', teamId: 'platform', amountMicros: amount, ttlMs: 30_000 });
    expect(await r('a', '200')).toMatchObject({ status: 'reserved' });
    expect(await r('b', '200')).toMatchObject({ status: 'refused', level: 'agent', availableMicros: '100', resetsAt: '2026-12-03T16:00:00.000Z' });
    expect(await r('a', '1')).toMatchObject({ status: 'reserved', amountMicros: '200' });
    expect(await ledger.settle('llm-router', { tenantId: 't1', requestId: 'a', actualMicros: '150' })).toMatchObject({ postedMicros: '150', releasedMicros: '50' });
    const status = await ledger.status('t1');
    expect(status.map((s) => [s.level, s.postedMicros, s.pendingMicros])).toEqual([
      ['tenant', '150', '0'],
      ['team', '150', '0'],
      ['agent', '150', '0'],
    ]);
    await expect(budgets.set('t1', admin, { level: 'agent', subjectId: 'bot', limitMicros: '100', period: 'day', timeZone: 'Asia/Shanghai' })).rejects.toMatchObject({ code: 'conflict' });
    // the user the agent acts for, where the tenant budgets people
    await budgets.set('t1', admin, { level: 'user', subjectId: 'alice', limitMicros: '100', period: 'month' });
    expect(await ledger.reserve('llm-router', { tenantId: 't1', requestId: 'u1', agentId: 'bot', teamId: 'platform', userId: 'alice', amountMicros: '101', ttlMs: 30_000 })).toMatchObject({ status: 'refused', level: 'user' });
    expect((await ledger.remaining('t1', 'bot', 'platform', 'alice')).levels.map((l) => l.level)).toEqual(['tenant', 'team', 'user', 'agent']);
    const events = await db.dataSource.query(`SELECT event_type FROM "${db.schema}".events WHERE stream_id LIKE 'hold-t1.%' ORDER BY global_position`);
    expect(events.map((e: { event_type: string }) => e.event_type)).toEqual(['billing.hold.reserved', 'billing.hold.refused', 'billing.hold.settled', 'billing.hold.refused']);
    await invariants('t1');
  });

  it('property: concurrent reserves, retries, settles, releases and expiries never overshoot', async () => {
    const tenant = 't2';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '2000', period: 'month' });
    for (const team of ['a', 'b', 'c']) await budgets.set(tenant, admin, { level: 'team', subjectId: team, limitMicros: '900', period: 'none' });
    for (let i = 0; i < 9; i++) await budgets.set(tenant, admin, { level: 'agent', subjectId: `agent-${i}`, limitMicros: String(200 + i * 40), period: 'day', hard: i !== 8 });
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const answers = new Map<string, unknown>();
    const live: string[] = [];
    let next = 0;
    for (let round = 0; round < 25; round++) {
      const ops: Array<Promise<void>> = [];
      for (let k = 0; k < 24; k++) {
        const dice = rand(10);
        if (dice < 5 || live.length === 0) {
          const id = `r${next++}`;
          const agent = rand(9);
          const input = { tenantId: tenant, requestId: id, agentId: `agent-${agent}`, teamId: ['a', 'b', 'c'][agent % 3], amountMicros: String(1 + rand(120)), ttlMs: 1000 + rand(3000) };
          ops.push(
            ledger.reserve('llm-router', input).then((a) => {
              answers.set(id, a);
              if (a.status === 'reserved') live.push(id);
            }),
          );
        } else if (dice < 6 && answers.size > 0) {
          const id = [...answers.keys()][rand(answers.size)];
          ops.push(ledger.reserve('llm-router', { tenantId: tenant, requestId: id, agentId: 'agent-0', teamId: 'a', amountMicros: '1', ttlMs: 1000 }).then((a) => expect(a).toEqual(answers.get(id))));
        } else if (dice < 9) {
          const id = live.splice(rand(live.length), 1)[0];
          const actual = String(rand(160));
          // a third of the settled usage is corrected afterwards (up or down, capped by the headroom as a settle is)
          const corrected = rand(3) === 0 ? String(rand(200)) : null;
          ops.push(
            ledger.settle('llm-router', { tenantId: tenant, requestId: id, actualMicros: actual }).then(
              async (first) => {
                expect(await ledger.settle('llm-router', { tenantId: tenant, requestId: id, actualMicros: '7' })).toEqual(first);
                if (corrected !== null) expect(await ledger.settle('llm-router', { tenantId: tenant, requestId: id, actualMicros: corrected, revision: 1 })).toMatchObject({ revision: 1 });
              },
              (e: { code?: string }) => expect(e.code).toBe('illegal_state'),
            ),
          );
        } else {
          const id = live.splice(rand(live.length), 1)[0];
          ops.push(ledger.release('llm-router', { tenantId: tenant, requestId: id }).then(() => undefined));
        }
      }
      if (round % 3 === 2) {
        clock += 1500;
        ops.push(ledger.expire().then(() => undefined));
      }
      await Promise.all(ops);
      await invariants(tenant);
    }
    clock += 10_000;
    await ledger.expire();
    await invariants(tenant);
    const [{ held }] = await db.dataSource.query(`SELECT count(*)::int AS held FROM "${db.schema}".holds WHERE tenant_id = $1 AND status = 'held'`, [tenant]);
    expect(held).toBe(0);
    const [{ pending }] = await db.dataSource.query(`SELECT sum(pending)::int AS pending FROM "${db.schema}".budget_periods WHERE tenant_id = $1`, [tenant]);
    expect(pending).toBe(0);
  });

  it('late and corrected usage adjust the period of the usage\'s time (a month in Asia/Shanghai), with append-only lines summing to posted', async () => {
    const tenant = 't4';
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '1000', period: 'month', timeZone: 'Asia/Shanghai' });
    const usage = (requestId: string, actualMicros: string, occurredAt: string, revision = 0) =>
      ledger.settle('sandbox-orchestrator', { tenantId: tenant, requestId, actualMicros, agentId: 'bot', teamId: 'ops', occurredAt: new Date(occurredAt), revision });
    // 23:00 on 30 November in Shanghai, arriving on 3 December: November's account
    expect(await usage('nov', '300', '2026-11-30T15:00:00.000Z')).toMatchObject({ postedMicros: '300', late: true });
    // 01:00 on 1 December in Shanghai (still 30 November in UTC): December's
    expect(await usage('dec', '200', '2026-11-30T17:00:00.000Z')).toMatchObject({ postedMicros: '200', late: true });
    expect(await usage('dec', '999', '2026-11-30T17:00:00.000Z')).toMatchObject({ postedMicros: '200' }); // a redelivery: its first answer
    expect(await usage('nov', '120', '2026-11-30T15:00:00.000Z', 1)).toMatchObject({ postedMicros: '120', revision: 1 }); // a correction, down
    expect(await usage('nov', '900', '2026-11-30T15:00:00.000Z', 1)).toMatchObject({ postedMicros: '120', revision: 1 }); // the same revision again: nothing
    const q = (sql: string) => db.dataSource.query(sql.replaceAll('$s', `"${db.schema}"`), [tenant]);
    const periods = await q(`SELECT period_start, posted::int AS posted FROM $s.budget_periods WHERE tenant_id = $1 ORDER BY period_start`);
    expect(periods.map((p: { period_start: Date; posted: number }) => [p.period_start.toISOString(), p.posted])).toEqual([
      ['2026-10-31T16:00:00.000Z', 120],
      ['2026-11-30T16:00:00.000Z', 200],
    ]);
    const lines = await q(`SELECT request_id, revision, posted_micros::int AS posted, occurred_at FROM $s.usage_lines WHERE tenant_id = $1 ORDER BY request_id, revision`);
    expect(lines.map((l: { request_id: string; revision: number; posted: number }) => [l.request_id, l.revision, l.posted])).toEqual([
      ['dec', 0, 200],
      ['nov', 0, 300],
      ['nov', 1, -180],
    ]);
    expect(lines.every((l: { occurred_at: Date }) => l.occurred_at.getTime() < Date.parse('2026-12-01T00:00:00.000Z'))).toBe(true);
    // append-only: the ledger's role may not change a line (and a trigger refuses it to anyone)
    await expect(q(`UPDATE $s.usage_lines SET posted_micros = 0 WHERE tenant_id = $1`)).rejects.toThrow(/permission denied/);
    // a usage naming no agent, with no hold, still has nowhere to go
    await expect(ledger.settle('llm-router', { tenantId: tenant, requestId: 'ghost', actualMicros: '5' })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('a batch is two round trips (the BEGIN with the locks, the COMMIT with the write), one on rows the instance remembers (the write alone, its parameters beside it); quotes and backslashes travel intact either way', async () => {
    const tenant = 't5';
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '1000', period: 'none' });
    await ledger.reserve('llm-router', { tenantId: tenant, requestId: 'warm', agentId: 'bot', amountMicros: '1', ttlMs: 30_000 }); // budget known, period opened
    // (budgets remembered: no read of them on a watched connection between the two reserves)
    const fresh = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now, budgetCacheMs: 60_000 });
    const model = `o'brien\\"; DROP TABLE x; --\u00e9$1`;
    const usage = [{ kind: 'input_tokens', quantity: 1.5 }];
    type Client = { query(...args: unknown[]): unknown };
    const pool = pgPoolOf<{ connect(...args: unknown[]): Promise<Client> }>(db.dataSource);
    const connect = pool.connect.bind(pool);
    const sent: string[] = [];
    const watched = new WeakSet<Client>();
    // the ledger's connections (a promise); TypeORM's own (a callback) pass untouched
    jest.spyOn(pool, 'connect').mockImplementation(async (...args: unknown[]) => {
      if (args.length > 0) return connect(...args);
      const client = await connect();
      if (!watched.has(client)) {
        watched.add(client);
        const query = client.query.bind(client);
        jest.spyOn(client, 'query').mockImplementation((...args: unknown[]) => (sent.push(String(args[0])), query(...args)));
      }
      return client;
    });
    try {
      // rows this instance has not seen: locked, then written
      expect(await fresh.reserve('llm-router', { tenantId: tenant, requestId: 'r0', agentId: 'bot', amountMicros: '100', ttlMs: 30_000 })).toMatchObject({ status: 'reserved' });
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^BEGIN;[^]*FOR UPDATE/);
      expect(sent[1]).toMatch(/ledger_write\('[^]*COMMIT$/);
      // now it remembers the account as it committed it: the write alone, checked against it, a transaction of its own
      sent.length = 0;
      expect(await fresh.reserve('llm-router', { tenantId: tenant, requestId: 'r', agentId: 'bot', amountMicros: '100', ttlMs: 30_000 })).toMatchObject({ status: 'reserved' });
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(/^SELECT "[^"]+"\.ledger_write\(\$1::jsonb,[^]*\$8::int\)$/);
      // a model with quotes and backslashes, as a parameter (the settle of a remembered hold: one message)
      sent.length = 0;
      expect(await fresh.settle('llm-router', { tenantId: tenant, requestId: 'r', actualMicros: '40', model, usage })).toMatchObject({ postedMicros: '40' });
      expect(sent).toHaveLength(1);
    } finally {
      jest.restoreAllMocks();
    }
    // and written in as a literal (another instance, whose remembered account fresh has moved: decided again under the lock)
    expect(await ledger.reserve('llm-router', { tenantId: tenant, requestId: 'q', agentId: 'bot', amountMicros: '100', ttlMs: 30_000 })).toMatchObject({ status: 'reserved' });
    expect(await fresh.reserve('llm-router', { tenantId: tenant, requestId: 'q2', agentId: 'bot', amountMicros: '100', ttlMs: 30_000 })).toMatchObject({ status: 'reserved' });
    expect(await ledger.settle('llm-router', { tenantId: tenant, requestId: 'q', actualMicros: '40', model, usage })).toMatchObject({ postedMicros: '40' });
    for (const requestId of ['r', 'q']) {
      const [line] = await db.dataSource.query(`SELECT model, usage FROM "${db.schema}".usage_lines WHERE tenant_id = $1 AND request_id = $2`, [tenant, requestId]);
      expect(line).toEqual({ model, usage });
      const [event] = await db.dataSource.query(`SELECT envelope->'data'->>'model' AS model FROM "${db.schema}".events WHERE stream_id = $1 AND stream_version = 2`, [
        `hold-${tenant}.${requestId}`,
      ]);
      expect(event.model).toBe(model);
    }
    expect(inlineParameters('SELECT $1::text[], $2, $10', [['a', null], null, 1, 2, 3, 4, 5, 6, 7, `x'y`])).toBe(`SELECT '{"a",NULL}'::text[], NULL, 'x''y'`);
  });

  it('a batch on remembered rows that another instance changed meanwhile is decided again on locked rows (no lost update; a lowered limit applies at once)', async () => {
    const tenant = 't7';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '5000', period: 'none' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '300', period: 'none' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'eve', limitMicros: '1000', period: 'none' });
    const other = createDataSource({ ...db.app, poolSize: 2 });
    await other.initialize();
    try {
      const a = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now });
      const repoB = new LedgerRepository(other, db.schema);
      const b = new LedgerService({ repo: repoB, eventContext: systemEventContext('billing'), now });
      const reserve = (ledger: LedgerService, requestId: string, agentId = 'bot') => ledger.reserve('llm-router', { tenantId: tenant, requestId, agentId, amountMicros: '100', ttlMs: 30_000 });
      expect(await reserve(a, 'a1')).toMatchObject({ status: 'reserved' }); // a remembers pending 100
      expect(await reserve(b, 'b1')).toMatchObject({ status: 'reserved' }); // b remembers 200
      expect(await reserve(a, 'a2')).toMatchObject({ status: 'reserved' }); // a's 100 is stale: decided again on the row's 200
      const writes = jest.spyOn(repoB, 'write');
      const locks = jest.spyOn(repoB, 'lock');
      // b remembers 200, where 200 + 100 fits; the row holds 300: written as remembered, that would be a lost update
      expect(await reserve(b, 'b2')).toMatchObject({ status: 'refused', level: 'agent', pendingMicros: '300', availableMicros: '0' });
      expect([writes.mock.calls.length, locks.mock.calls.length]).toEqual([2, 1]); // the remembered attempt, then the locked one
      await invariants(tenant);
      // an admin lowers a limit that an instance remembers: its next reserve is checked against the new one
      const c = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now });
      expect(await reserve(c, 'c1', 'eve')).toMatchObject({ status: 'reserved' });
      await budgets.set(tenant, admin, { level: 'agent', subjectId: 'eve', limitMicros: '150', period: 'none' });
      expect(await reserve(c, 'c2', 'eve')).toMatchObject({ status: 'refused', limitMicros: '150' });
      await invariants(tenant);
    } finally {
      jest.restoreAllMocks();
      await other.destroy();
    }
  });

  it('two instances reserving one new request id at once hold it once (the later meets the primary key, retries, and gets the first answer)', async () => {
    const tenant = 't6';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '5000', period: 'none' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '1000', period: 'none' });
    const other = createDataSource({ ...db.app, poolSize: 2 });
    await other.initialize();
    try {
      const first = new LedgerRepository(db.dataSource, db.schema);
      let a = new LedgerService({ repo: first, eventContext: systemEventContext('billing'), now });
      let b = new LedgerService({ repo: new LedgerRepository(other, db.schema), eventContext: systemEventContext('billing'), now });
      const reserve = (ledger: LedgerService, requestId: string) => ledger.reserve('llm-router', { tenantId: tenant, requestId, agentId: 'bot', amountMicros: '100', ttlMs: 30_000 });
      await Promise.all([reserve(a, 'warm-a'), reserve(b, 'warm-b')]); // periods opened
      // instances that remember no rows yet, so that both lock (the case of a remembered row is the test above)
      a = new LedgerService({ repo: first, eventContext: systemEventContext('billing'), now });
      b = new LedgerService({ repo: new LedgerRepository(other, db.schema), eventContext: systemEventContext('billing'), now });
      // a has locked (and found no hold); b's lock statement reads no hold either, then waits for a's account rows
      let bLocking: Promise<unknown> | undefined;
      const write = first.write.bind(first);
      jest.spyOn(first, 'write').mockImplementationOnce(async (tx, w) => {
        bLocking = reserve(b, 'same');
        for (let i = 0; i < 200; i++) {
          const [{ waiting }] = await other.query(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%MATERIALIZED%'`,
            [db.schema],
          );
          if (waiting > 0) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        return write(tx, w);
      });
      const fromA = await reserve(a, 'same');
      const fromB = await bLocking;
      expect(fromA).toMatchObject({ status: 'reserved', amountMicros: '100' });
      expect(fromB).toEqual(fromA);
      const [{ pending }] = await db.dataSource.query(`SELECT pending::int FROM "${db.schema}".budget_periods WHERE tenant_id = $1 AND level = 'agent'`, [tenant]);
      expect(pending).toBe(300); // warm-a, warm-b and one hold of 'same'
      await invariants(tenant);
    } finally {
      jest.restoreAllMocks();
      await other.destroy();
    }
  });

  it('a request id an instance takes for new, on rows it remembers, that another instance holds: decided again under the lock, the first answer', async () => {
    const tenant = 't8';
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '1000', period: 'none' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'eve', limitMicros: '1000', period: 'none' });
    const other = createDataSource({ ...db.app, poolSize: 2 });
    await other.initialize();
    try {
      const a = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now });
      const repoB = new LedgerRepository(other, db.schema);
      const b = new LedgerService({ repo: repoB, eventContext: systemEventContext('billing'), now });
      const reserve = (ledger: LedgerService, requestId: string, agentId: string, amountMicros: string) =>
        ledger.reserve('llm-router', { tenantId: tenant, requestId, agentId, amountMicros, ttlMs: 30_000 });
      expect(await reserve(b, 'b0', 'bot', '100')).toMatchObject({ status: 'reserved' }); // b remembers bot's account as it is
      const first = await reserve(a, 'dup', 'eve', '200'); // the request id, held through another account
      const writes = jest.spyOn(repoB, 'write');
      const locks = jest.spyOn(repoB, 'lock');
      // b's write on remembered rows meets a's hold on the primary key: stale rows, not a failure
      expect(await reserve(b, 'dup', 'bot', '300')).toEqual(first);
      expect([writes.mock.calls.length, locks.mock.calls.length]).toEqual([2, 1]);
      const pending = await db.dataSource.query(`SELECT subject_id, pending::int FROM "${db.schema}".budget_periods WHERE tenant_id = $1 ORDER BY subject_id`, [tenant]);
      expect(pending).toEqual([
        { subject_id: 'bot', pending: 100 },
        { subject_id: 'eve', pending: 200 },
      ]);
    } finally {
      jest.restoreAllMocks();
      await other.destroy();
    }
  });

  it('two instances reserving one request id against one account, one on remembered rows and one under the lock, many times: no deadlock, the first answer, never past the limit', async () => {
    const tenant = 't9';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '5000', period: 'none' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '1500', period: 'none' });
    const other = createDataSource({ ...db.app, poolSize: 2 });
    await other.initialize();
    const failures: unknown[] = [];
    /** A repository whose writes record how they failed (a deadlock of either is decided again or retried, so no caller would see it). */
    const recording = (repo: LedgerRepository) => {
      const write = repo.write.bind(repo);
      jest.spyOn(repo, 'write').mockImplementation((tx, w) => write(tx, w).catch((error: unknown) => Promise.reject((failures.push(error), error))));
      return repo;
    };
    const first = recording(new LedgerRepository(db.dataSource, db.schema));
    const second = recording(new LedgerRepository(other, db.schema));
    const reserve = (ledger: LedgerService, requestId: string, amountMicros = '100') => ledger.reserve('llm-router', { tenantId: tenant, requestId, agentId: 'bot', amountMicros, ttlMs: 30_000 });
    try {
      for (let round = 0; round < 20; round++) {
        // b remembers the account (its last commit); a remembers nothing, so it locks
        const b = new LedgerService({ repo: second, eventContext: systemEventContext('billing'), now });
        await reserve(b, `warm-${round}`, '1');
        const a = new LedgerService({ repo: first, eventContext: systemEventContext('billing'), now });
        // a has locked the account; b's write on remembered rows goes in, and waits (for the account, or before the fix for it
        // after inserting the request id's hold); then a's write inserts the same request id
        let fromB: Promise<unknown> | undefined;
        const write = jest.mocked(first.write).getMockImplementation()!;
        jest.mocked(first.write).mockImplementationOnce(async (tx, w) => {
          fromB = reserve(b, `same-${round}`);
          for (let i = 0; i < 200; i++) {
            const [{ waiting }] = await db.dataSource.query(
              `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%ledger_write%'`,
              [db.schema],
            );
            if (waiting > 0) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          return write(tx, w);
        });
        const fromA = await reserve(a, `same-${round}`);
        expect(await fromB).toEqual(fromA);
        expect(await reserve(b, `same-${round}`, '7')).toEqual(fromA); // a retry anywhere: the first answer
      }
      expect(failures.filter((e) => (e as { code?: string }).code === '40P01')).toEqual([]);
      const holds = await db.dataSource.query(`SELECT status, count(*)::int AS n FROM "${db.schema}".holds WHERE tenant_id = $1 AND request_id LIKE 'same-%' GROUP BY status ORDER BY status`, [tenant]);
      expect(holds).toEqual([
        { status: 'held', n: 14 },
        { status: 'refused', n: 6 },
      ]);
      await invariants(tenant);
    } finally {
      jest.restoreAllMocks();
      await other.destroy();
    }
  });

  it('allotments: granted up to half the headroom left, at least the asking request\'s worst case, drawn by concurrent settles on two instances, released and expired; never past the limit (the CHECK)', async () => {
    const tenant = 't-allot';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '100000', period: 'month' });
    await budgets.set(tenant, admin, { level: 'team', subjectId: 'ops', limitMicros: '50000', period: 'month' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '5000', period: 'day' });
    const other = createDataSource({ ...db.app, poolSize: 2 });
    await other.initialize();
    try {
      const a = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now, lanes: 2, maxBatch: 8 });
      const b = new LedgerService({ repo: new LedgerRepository(other, db.schema), eventContext: systemEventContext('billing'), now, lanes: 2, maxBatch: 8 });
      const allot = (l: LedgerService, id: string, asked: number, min: number) =>
        l.reserve('llm-router', { tenantId: tenant, requestId: id, agentId: 'bot', teamId: 'ops', amountMicros: String(asked), minAmountMicros: String(min), ttlMs: 30_000 });
      const settle = (l: LedgerService, requestId: string, actual: number, allotmentId: string) => l.settle('llm-router', { tenantId: tenant, requestId, actualMicros: String(actual), model: 'm', allotmentId });
      const agent = async () => (await ledger.status(tenant, { level: 'agent', subjectId: 'bot' }))[0];

      // at most half of what the agent has left each time (5000, then 3000, then 1500 left), at least the request's own
      expect(await allot(a, 'al-a', 2000, 250)).toMatchObject({ status: 'reserved', amountMicros: '2000' });
      expect(await allot(b, 'al-b', 2000, 250)).toMatchObject({ status: 'reserved', amountMicros: '1500' });
      expect(await allot(a, 'al-c', 2000, 250)).toMatchObject({ status: 'reserved', amountMicros: '750' });
      // 750 left: half is 375, the request's own 700 fits: 700
      expect(await allot(b, 'al-d', 2000, 700)).toMatchObject({ status: 'reserved', amountMicros: '700' });
      expect(await allot(a, 'al-e', 2000, 250)).toMatchObject({ status: 'refused', level: 'agent', limitMicros: '5000', availableMicros: '50' });
      expect(await allot(b, 'al-a', 1, 1)).toMatchObject({ status: 'reserved', amountMicros: '2000' }); // a retry, on the other instance
      expect(await agent()).toMatchObject({ postedMicros: '0', pendingMicros: '4950' });
      await invariants(tenant);

      // settles against the allotments from both instances at once (remembered rows, then locks when the other moved them),
      // each retried on the other instance; some costs beyond what is left in their allotment
      let seed = 11;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
      const ids = ['al-a', 'al-b', 'al-c', 'al-d'];
      const answers = await Promise.all(
        Array.from({ length: 96 }, async (_, i) => {
          const [first, second] = i % 2 ? [a, b] : [b, a];
          const allotmentId = ids[rand(ids.length)];
          const actual = rand(120);
          const answer = await settle(first, `req-${i}`, actual, allotmentId);
          expect(await settle(second, `req-${i}`, actual + 1, allotmentId)).toEqual(answer);
          return answer;
        }),
      );
      expect(answers.every((x) => x.status === 'settled' && !x.late)).toBe(true);
      await invariants(tenant);
      const lines = await db.dataSource.query(`SELECT count(*)::int AS n FROM "${db.schema}".usage_lines WHERE tenant_id = $1 AND request_id LIKE 'req-%'`, [tenant]);
      expect(lines).toEqual([{ n: 96 }]);

      // the remainders: released by the caller, or by the sweeper past the TTL; a settle after that is late
      const held = await db.dataSource.query(`SELECT request_id, amount::int AS amount FROM "${db.schema}".holds WHERE tenant_id = $1 AND kind = 'allotment' AND status = 'held' ORDER BY request_id`, [tenant]);
      expect(held.map((h: { request_id: string }) => h.request_id)).toEqual(ids);
      const release = await b.release('llm-router', { tenantId: tenant, requestId: 'al-a' });
      expect(release).toEqual({ status: 'released', requestId: 'al-a', releasedMicros: String(held[0].amount) });
      // (nothing held for it: posted as far as the agent's headroom allows, as any late settle)
      const room = Number((await agent()).remainingMicros);
      expect(await settle(a, 'req-late', 30, 'al-a')).toMatchObject({ postedMicros: String(Math.min(30, room)), overrunMicros: String(30 - Math.min(30, room)), late: true });
      clock += 31_000;
      while ((await ledger.expire()) > 0);
      clock -= 31_000;
      const status = await agent();
      expect(status.pendingMicros).toBe('0');
      const posted = await db.dataSource.query(`SELECT sum(posted)::int AS posted FROM "${db.schema}".holds WHERE tenant_id = $1 AND kind = 'request'`, [tenant]);
      expect(Number(status.postedMicros)).toBe(posted[0].posted);
      await invariants(tenant);
      const events = await db.dataSource.query(`SELECT event_type, envelope->'data'->>'allotmentId' AS allotment FROM "${db.schema}".events WHERE stream_id = $1 ORDER BY stream_version`, [`hold-${tenant}.req-0`]);
      expect(events).toEqual([{ event_type: 'billing.hold.settled', allotment: expect.stringMatching(/^al-/) }]);
      // the database refuses what the decider would never write: an allotment past the limit
      await expect(
        db.dataSource.query(`UPDATE "${db.schema}".budget_periods SET pending = limit_micros - posted + 1 WHERE tenant_id = $1 AND level = 'agent'`, [tenant]),
      ).rejects.toMatchObject({ constraint: 'budget_periods_within_limit' });
    } finally {
      await other.destroy();
    }
  }, 60000);

  it('an allotment another instance drew from since this one remembered it is decided again, even when this instance has the accounts fresh (no lost draw)', async () => {
    const tenant = 't-allot-stale';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '100000', period: 'none' });
    await budgets.set(tenant, admin, { level: 'agent', subjectId: 'bot', limitMicros: '10000', period: 'none' });
    const other = createDataSource({ ...db.app, poolSize: 2 });
    await other.initialize();
    try {
      const a = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: systemEventContext('billing'), now });
      const b = new LedgerService({ repo: new LedgerRepository(other, db.schema), eventContext: systemEventContext('billing'), now });
      const settle = (l: LedgerService, requestId: string, actual: number) => l.settle('llm-router', { tenantId: tenant, requestId, actualMicros: String(actual), allotmentId: 'al' });
      const reserve = (l: LedgerService, requestId: string) => l.reserve('llm-router', { tenantId: tenant, requestId, agentId: 'bot', amountMicros: '10', ttlMs: 30_000 });
      expect(await a.reserve('llm-router', { tenantId: tenant, requestId: 'al', agentId: 'bot', amountMicros: '1000', minAmountMicros: '100', ttlMs: 30_000 })).toMatchObject({ amountMicros: '1000' });
      await settle(a, 'r1', 32); // a remembers the allotment (968) and the account
      await settle(b, 'r2', 32); // b draws: the allotment holds 936
      await reserve(a, 'p1'); // a's account was stale: decided again under the lock, so a has the account fresh, the allotment not
      await new Promise((r) => setTimeout(r, 1100)); // (a locks for a second after finding rows stale: past it, it writes on what it remembers)
      await settle(a, 'r3', 32); // on the allotment as a remembers it (968), it would hold 936 again: one draw lost
      const [al] = await db.dataSource.query(`SELECT amount::int AS amount FROM "${db.schema}".holds WHERE tenant_id = $1 AND request_id = 'al'`, [tenant]);
      expect(al.amount).toBe(1000 - 3 * 32);
      await invariants(tenant);
      expect(await a.release('llm-router', { tenantId: tenant, requestId: 'al' })).toMatchObject({ releasedMicros: String(1000 - 3 * 32) });
      await invariants(tenant);
    } finally {
      await other.destroy();
    }
  });

  it('kill -9 of a process mid-way through reservations: invariants hold, and its holds expire', async () => {
    const tenant = 't3';
    await budgets.set(tenant, admin, { level: 'tenant', subjectId: tenant, limitMicros: '3000', period: 'month' });
    for (const team of [0, 1]) await budgets.set(tenant, admin, { level: 'team', subjectId: `team-${team}`, limitMicros: '1800', period: 'month' });
    for (let i = 0; i < 6; i++) await budgets.set(tenant, admin, { level: 'agent', subjectId: `agent-${i}`, limitMicros: '500', period: 'none' });
    const child = spawn(process.execPath, [join(__dirname, 'support', 'reserver.js')], {
      env: { ...process.env, RESERVER: JSON.stringify({ connection: db.app, schema: db.schema, tenant, agents: 6, teams: 2 }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let lines = 0;
      child.stdout.on('data', (d: Buffer) => {
        lines += d.toString().split('\n').filter(Boolean).length;
        if (lines >= 8) resolve();
      });
      child.on('exit', () => reject(new Error(`reserver exited early: ${err}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await invariants(tenant);
    const [{ held }] = await db.dataSource.query(`SELECT count(*)::int AS held FROM "${db.schema}".holds WHERE tenant_id = $1 AND status = 'held'`, [tenant]);
    expect(held).toBeGreaterThan(0); // it died holding
    // The holds were made on the real clock with a 1 s TTL: the sweeper (here, a tick) releases them.
    clock = Date.now() + 5000;
    while ((await ledger.expire()) > 0);
    await invariants(tenant);
    const [{ pending }] = await db.dataSource.query(`SELECT sum(pending)::int AS pending FROM "${db.schema}".budget_periods WHERE tenant_id = $1`, [tenant]);
    expect(pending).toBe(0);
  }, 60000);
});
