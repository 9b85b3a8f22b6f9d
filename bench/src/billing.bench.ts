import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { systemEventContext } from '@palisade/contracts';
import { createDataSource, PgEventStore, pgPoolOf } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE } from '@palisade/testing';
import type { DataSource } from 'typeorm';
import { BudgetsRepository } from '@palisade/billing-service/dist/budgets/budgets.repository';
import { BudgetsService } from '@palisade/billing-service/dist/budgets/budgets.service';
import { billingMigrations } from '@palisade/billing-service/dist/billing.migration';
import { LedgerRepository } from '@palisade/billing-service/dist/ledger/ledger.repository';
import { LedgerService } from '@palisade/billing-service/dist/ledger/ledger.service';
import { cpuMsOf, round, summarize } from './stats';

/**
 * billing: the ledger IN PROCESS (`LedgerService`, as the NATS handlers call it) on
 * PostgreSQL; NATS and TLS are not included. A pair is a reserve then a settle of the
 * same request, each a checked, evented transaction on locked or remembered rows (grouped
 * with whatever else is in flight). Spread: 1,000 agents in 50 teams of one tenant, budgets on all three
 * levels (so every pair also locks the tenant's row). Hot: one agent, one team. Latency
 * of a reserve at 4 in flight. Raw: a single-row conditional UPDATE transaction
 * (`UPDATE … SET pending = pending + 1 WHERE … AND pending + 1 <= limit`) on the same
 * PostgreSQL, same concurrency, same run. Overshoot: three ledger instances (as three
 * router-facing replicas, each its own connection pool) race 192 reserves against one
 * budget that fits 50; admitted beyond 50, and rows past their limit, are the overshoot.
 * The ledger runs as the service does by default (one lane, batches of 256, budgets
 * remembered for 1 s). CPU per pair of the spread run, of this process and of the
 * PostgreSQL backends of the ledger's pool: what a pair costs, which a loaded shared
 * machine changes far less than it changes the pairs per second.
 */
const PAIRS = Number(process.env.BENCH_BILLING_PAIRS ?? 20000);
const CONCURRENCY = Number(process.env.BENCH_BILLING_CONCURRENCY ?? 64);
/** reserve_p50_ms / reserve_p99_ms are of reserves alone at this many in flight (the "at 4 in flight"), not at CONCURRENCY. */
const LIGHT = 4;
/** Ledger lanes and batch size (the service's defaults when unset). */
const LANES = process.env.BENCH_BILLING_LANES ? Number(process.env.BENCH_BILLING_LANES) : undefined;
const MAX_BATCH = process.env.BENCH_BILLING_MAX_BATCH ? Number(process.env.BENCH_BILLING_MAX_BATCH) : undefined;
/** Days of past day periods of every agent's budget before the runs (a deployment that old): the accounts table grows by one row per agent a day. */
const HISTORY_DAYS = Number(process.env.BENCH_BILLING_HISTORY_DAYS ?? 0);
const TENANT = 'bench';
const admin = { type: 'user' as const, id: 'bench-admin' };

export async function billingBenchmark(): Promise<Record<string, number>> {
  const db = await createTestSchema('bench_bill');
  const extra: Array<{ destroy(): Promise<void> }> = [];
  try {
    const migrator = createDataSource({ ...db.owner, poolSize: 1 }, billingMigrations.map((m) => m(db.schema, TEST_APP_ROLE)));
    await migrator.initialize();
    await migrator.runMigrations();
    // The raw comparison's counters (created by the owner, as a migration would).
    await migrator.query(`CREATE TABLE "${db.schema}".raw_counters (id int PRIMARY KEY, pending bigint NOT NULL, lim bigint NOT NULL)`);
    await migrator.query(`INSERT INTO "${db.schema}".raw_counters SELECT g, 0, 900000000000000 FROM generate_series(0, 999) g`);
    await migrator.query(`GRANT SELECT, UPDATE ON "${db.schema}".raw_counters TO ${TEST_APP_ROLE}`);
    await migrator.destroy();
    const ctx = systemEventContext('billing');
    const ledger = new LedgerService({ repo: new LedgerRepository(db.dataSource, db.schema), eventContext: ctx, lanes: LANES, maxBatch: MAX_BATCH, budgetCacheMs: 1000 });
    const budgets = new BudgetsService(new PgEventStore(db.dataSource, db.schema), new BudgetsRepository(db.schema), ctx, undefined, () => ledger.forgetBudgets());
    const big = '900000000000000';
    await budgets.set(TENANT, admin, { level: 'tenant', subjectId: TENANT, limitMicros: big, period: 'month' });
    for (let t = 0; t < 50; t++) await budgets.set(TENANT, admin, { level: 'team', subjectId: `team-${t}`, limitMicros: big, period: 'month' });
    for (let a = 0; a < 1000; a++) await budgets.set(TENANT, admin, { level: 'agent', subjectId: `agent-${a}`, limitMicros: big, period: 'day' });

    let seq = 0;
    const pair = async (agent: number) => {
      const requestId = `r-${seq++}`;
      const input = { tenantId: TENANT, requestId, agentId: `agent-${agent}`, teamId: `team-${agent % 50}`, amountMicros: '5000', ttlMs: 60000 };
      const r = await ledger.reserve('llm-router', input);
      if (r.status !== 'reserved') throw new Error(`refused: ${JSON.stringify(r)}`);
      await ledger.settle('llm-router', { tenantId: TENANT, requestId, actualMicros: '3217' });
    };
    const run = async (count: number, concurrency: number, op: (n: number) => Promise<void>) => {
      const latencies: number[] = [];
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            const n = next++;
            const t0 = performance.now();
            await op(n);
            latencies.push(performance.now() - t0);
          }
        }),
      );
      return { perSecond: count / ((performance.now() - start) / 1000), ...summarize(latencies) };
    };
    await run(2000, CONCURRENCY, (n) => pair(n % 1000));
    if (HISTORY_DAYS > 0) {
      await db.dataSource.query(
        `INSERT INTO "${db.schema}".budget_periods
         SELECT budget_id, period_start - make_interval(days => d), period_end - make_interval(days => d), tenant_id, level, subject_id, limit_micros, hard, thresholds, 0, 0
           FROM "${db.schema}".budget_periods, generate_series(1, $1::int) d WHERE level = 'agent'`,
        [HISTORY_DAYS],
      );
    }
    const backends = new Map((await backendPids(db.dataSource)).map((pid) => [pid, cpuMsOf(pid)]));
    const nodeCpu0 = process.cpuUsage();
    const spread = await run(PAIRS, CONCURRENCY, (n) => pair((n * 7919) % 1000));
    const nodeCpu = process.cpuUsage(nodeCpu0);
    // a connection the pool closed as idle meanwhile (its backend gone) did none of the work
    const pgCpuMs = sum([...backends].map(([pid, before]) => (existsSync(`/proc/${pid}`) ? cpuMsOf(pid) - before : 0)));
    const hot = await run(Math.min(PAIRS, 10000), CONCURRENCY, () => pair(0));
    const light = await run(3000, LIGHT, async (n) => {
      const requestId = `light-${n}`;
      await ledger.reserve('llm-router', { tenantId: TENANT, requestId, agentId: `agent-${n % 1000}`, teamId: `team-${n % 50}`, amountMicros: '5000', ttlMs: 60000 });
    });
    const releaseAll = await db.dataSource.query(`SELECT request_id FROM "${db.schema}".holds WHERE status = 'held'`);
    await Promise.all(releaseAll.map((r: { request_id: string }) => ledger.release('llm-router', { tenantId: TENANT, requestId: r.request_id })));

    // Raw: the least a locked, checked counter costs on this PostgreSQL (one statement, one commit).
    const raw = await run(PAIRS, CONCURRENCY, (n) =>
      db.dataSource.transaction(async (m) => {
        await m.query(`UPDATE "${db.schema}".raw_counters SET pending = pending + 1 WHERE id = $1 AND pending + 1 <= lim`, [(n * 7919) % 1000]);
      }),
    );

    // Overshoot: three instances, 192 concurrent reserves, a budget that fits 50.
    const instances = [ledger];
    for (let i = 0; i < 2; i++) {
      const ds = createDataSource({ ...db.app, poolSize: 10 });
      await ds.initialize();
      extra.push(ds);
      instances.push(new LedgerService({ repo: new LedgerRepository(ds, db.schema), eventContext: ctx, lanes: LANES, maxBatch: MAX_BATCH, budgetCacheMs: 1000 }));
    }
    await budgets.set(TENANT, admin, { level: 'agent', subjectId: 'capped', limitMicros: String(50 * 1000), period: 'none' });
    const answers = await Promise.all(
      Array.from({ length: 192 }, (_, i) =>
        instances[i % 3].reserve('llm-router', { tenantId: TENANT, requestId: `cap-${i}`, agentId: 'capped', teamId: 'team-0', amountMicros: '1000', ttlMs: 60000 }),
      ),
    );
    const admitted = answers.filter((a) => a.status === 'reserved').length;
    const [{ over }] = await db.dataSource.query(`SELECT count(*)::int AS over FROM "${db.schema}".budget_periods WHERE hard AND posted + pending > limit_micros`);
    return {
      reserve_settle_per_s: round(spread.perSecond, 0),
      hot_reserve_settle_per_s: round(hot.perSecond, 0),
      reserve_p50_ms: round(light.p50),
      reserve_p99_ms: round(light.p99),
      raw_update_per_s: round(raw.perSecond, 0),
      ratio: round(spread.perSecond / raw.perSecond),
      node_cpu_us_per_pair: round((nodeCpu.user + nodeCpu.system) / PAIRS, 0),
      pg_cpu_us_per_pair: round((pgCpuMs * 1000) / PAIRS, 0),
      overshoot: Math.max(0, admitted - 50) + over,
      concurrency: CONCURRENCY,
      latency_concurrency: LIGHT,
    };
  } finally {
    for (const ds of extra) await ds.destroy().catch(() => undefined);
    await db.drop();
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The PostgreSQL backend of every connection of the data source's pool (each opened now, and kept idle in the pool for the run). */
async function backendPids(ds: DataSource): Promise<number[]> {
  type Client = { query(sql: string): Promise<{ rows: Array<{ pid: number }> }>; release(): void };
  const pool = pgPoolOf<{ connect(): Promise<Client>; options: { max: number } }>(ds);
  const clients = await Promise.all(Array.from({ length: pool.options.max }, () => pool.connect()));
  try {
    return await Promise.all(clients.map(async (c) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid));
  } finally {
    for (const c of clients) c.release();
  }
}
