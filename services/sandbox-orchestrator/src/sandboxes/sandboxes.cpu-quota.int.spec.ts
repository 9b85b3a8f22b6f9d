import { rmSync } from 'node:fs';
import { systemEventContext, type Principal } from '@palisade/contracts';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { alice, outcome, session } from '../../test/sandboxes.memory';
import { CrunRuntime } from '../runtime/crun.runtime';
import type { ExecRequest, SandboxRuntime } from '../runtime/runtime.port';
import type { Caller } from '../sessions/sessions.service';
import { sandboxCpuGrantBootsMigration, sandboxCpuGrantsMigration, sandboxesMigration, sandboxQuotasMigration } from './sandboxes.migration';
import { SandboxesRepository } from './sandboxes.repository';
import { SandboxesService } from './sandboxes.service';

/**
 * A tenant's CPU-seconds quota with executions running at once on two orchestrator
 * instances of one database: together they are granted at most what the tenant has left
 * (each instance granted the whole remainder when the grants were in its memory), the
 * grants leave with the executions' ends, and a dead instance's grants with its restart;
 * and a quota lowered while a program runs in real crun kills it (reason quota).
 */
const SESSION = '0190b7e4-0000-7000-8000-000000000002';

describe('SandboxesService: the CPU-seconds quota across instances (PostgreSQL)', () => {
  let db: TestSchema;
  let store: PgEventStore;
  const requests: ExecRequest[] = [];
  /** The sandbox of each request, in the order the requests reached a runtime. */
  const sandboxOf: string[] = [];
  /**
   * By request (the order the requests reached a runtime), once its program runs: two
   * executions admitted at once may start in the other order (indexed by start, A's
   * finisher once ended B's program and the test waited for A's forever).
   */
  const finishers: Array<(cpuSeconds: number) => void> = [];
  let started = 0;
  const settle = () => new Promise((r) => setTimeout(r, 5));
  /**
   * Until `count` programs have reached a runtime. An execution that fails before it gets
   * there fails the test with its own error, where the wait alone ran into the test's
   * timeout and left its grants to the next case (seen once in CI: a 60 s timeout here,
   * then a leftover grant in the crun case).
   */
  async function untilRunning(count: number, ...executions: Array<Promise<unknown>>): Promise<void> {
    const failed = Promise.race(executions.map((e) => e.then(() => new Promise<never>(() => undefined))));
    failed.catch(() => undefined);
    while (started < count) await Promise.race([settle(), failed]);
  }

  /** An instance of the orchestrator: its own repository and runtime stand-in (each program held until `finish`), the shared database. */
  function instance(name: string, quota: () => number, now?: () => Date): SandboxesService {
    const runtime = {
      check: async () => undefined,
      create: async () => undefined,
      exec: (sandboxId: string, _executionId: string, request: ExecRequest) => {
        const index = requests.push(request) - 1;
        sandboxOf.push(sandboxId);
        const result = Promise.resolve(request.startWhen).then(
          () =>
            new Promise<ReturnType<typeof outcome>>((resolve) => {
              finishers[index] = (cpuSeconds) => resolve(outcome({ cpuSeconds, memoryGbSeconds: 0, wallSeconds: 1 }));
              started++;
            }),
        );
        return { result, kill: () => undefined };
      },
      stop: async () => undefined,
      remove: async () => undefined,
      reconcile: async () => ({ containers: [], workspaces: [] }),
    } as unknown as SandboxRuntime;
    return service(name, runtime, quota, now);
  }

  beforeAll(async () => {
    db = await createTestSchema('sbxcpu');
    const migrator = createDataSource(db.owner, [sandboxesMigration, sandboxQuotasMigration, sandboxCpuGrantsMigration, sandboxCpuGrantBootsMigration].map((m) => m(db.schema, TEST_APP_ROLE)));
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    store = new PgEventStore(db.dataSource, db.schema);
  });
  afterAll(() => db.drop());

  function service(name: string, runtime: SandboxRuntime, quota: () => number, now?: () => Date): SandboxesService {
    return new SandboxesService({
      store,
      repo: new SandboxesRepository(db.dataSource, store),
      sessions: { session: async () => ({ ...session, sessionId: SESSION }) },
      policy: () => ({ authorize: async () => ({ decision: 'allow', rule: 'test', reason: 'ok' }) }),
      runtime,
      tenantQuotas: async () => ({ maxSandboxes: 10, cpuSeconds: quota() }),
      settings: { outputCapBytes: 1024, idleStopMs: 60_000, instance: name, lifetimeMs: 3_600_000, quotas: { maxSandboxes: 10, cpuSeconds: 100, cpuWindowMs: 3_600_000 }, fileMaxBytes: 1024 },
      eventContext: systemEventContext('sandbox-orchestrator'),
      ...(now ? { now } : {}),
    });
  }

  const grants = async () => ((await db.dataSource.query(`SELECT execution_id, instance, cpu_seconds FROM sandbox_cpu_grants ORDER BY instance`)) as Array<{ instance: string; cpu_seconds: number }>).map((g) => [g.instance, g.cpu_seconds]);

  it('two instances running one tenant’s executions at once are granted in sum at most its remainder; the next is refused (429) until one ends', async () => {
    const [a, b] = [instance('inst-a', () => 10), instance('inst-b', () => 10)];
    // 4 of the tenant's 10 CPU-seconds used: 6 left
    const onA = await a.create(alice, SESSION, 'small');
    const used = a.exec(alice, onA.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    await untilRunning(1, used);
    finishers[0](4);
    await used;
    const onB = await b.create(alice, SESSION, 'small');
    // 'small' is half a core: 8 s of timeout is at most 4 CPU-seconds each
    const first = a.exec(alice, onA.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    const second = b.exec(alice, onB.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    await untilRunning(3, first, second);
    const granted = requests.slice(1).map((r) => r.cpuSecondsLimit!);
    expect(granted.sort()).toEqual([2, 4]);
    expect(granted[0] + granted[1]).toBeLessThanOrEqual(6);
    expect((await grants()).map(([i]) => i)).toEqual(['inst-a', 'inst-b']);
    const third = await b.create(alice, SESSION, 'small');
    await expect(b.exec(alice, third.id, { command: ['/bin/spin'], timeoutMs: 8000 })).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'cpu-seconds', limit: 10, used: 4, running: 6 } } });
    // the one on A ends having used 1: its usage committed and its grant gone in one commit (5 used, B holds its grant)
    // (A's and B's requests reach their runtimes in either order)
    const [ofA, ofB] = sandboxOf[1] === onA.id ? [1, 2] : [2, 1];
    const onAGrant = requests[ofA].cpuSecondsLimit!;
    finishers[ofA](1);
    await first;
    expect(await grants()).toEqual([['inst-b', 6 - onAGrant]]);
    const fourth = b.exec(alice, third.id, { command: ['/bin/spin'], timeoutMs: 20_000 });
    await untilRunning(4, fourth);
    expect(requests[3].cpuSecondsLimit).toBe(10 - 5 - (6 - onAGrant));
    finishers[ofB](1);
    finishers[3](1);
    await Promise.all([second, fourth]);
    expect(await grants()).toEqual([]);
  });

  it('claims of one tenant from many requests on two instances at once never grant more than the remainder', async () => {
    const repos = [new SandboxesRepository(db.dataSource, store), new SandboxesRepository(db.dataSource, store)];
    const since = new Date(Date.now() - 3_600_000);
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        repos[i % 2].claimCpu({ tenantId: 'race', executionId: `0190b7e4-0000-7000-8000-0000000001${String(i).padStart(2, '0')}`, instance: `inst-${i % 2}`, boot: `boot-${i % 2}`, quota: 5, since, want: 1, ttlSeconds: 60 }),
      ),
    );
    expect(claims.filter((c) => c.granted !== undefined).map((c) => c.granted)).toEqual([1, 1, 1, 1, 1]);
    await db.dataSource.query(`DELETE FROM sandbox_cpu_grants WHERE tenant_id = 'race'`);
  });

  it('a restarted instance drops the grants its dead process held; a grant past its expiry no longer counts (an instance that never came back)', async () => {
    const repo = new SandboxesRepository(db.dataSource, store);
    const since = new Date(Date.now() - 3_600_000);
    const claim = (executionId: string, instance: string, ttlSeconds: number) => repo.claimCpu({ tenantId: 'crash', executionId, instance, boot: 'dead-process', quota: 10, since, want: 10, ttlSeconds });
    expect(await claim('0190b7e4-0000-7000-8000-000000000201', 'inst-dead', 60)).toMatchObject({ granted: 10 });
    expect(await claim('0190b7e4-0000-7000-8000-000000000202', 'inst-other', 60)).toEqual({ used: 0, held: 10 });
    const restarted = instance('inst-dead', () => 10);
    await restarted.recover();
    await restarted.close();
    expect(await claim('0190b7e4-0000-7000-8000-000000000203', 'inst-gone', -1)).toMatchObject({ granted: 10 });
    expect(await claim('0190b7e4-0000-7000-8000-000000000204', 'inst-other', 60)).toMatchObject({ granted: 10, held: 0 });
    await db.dataSource.query(`DELETE FROM sandbox_cpu_grants WHERE tenant_id = 'crash'`);
  });

  it('a process restarted under the instance name of another one still running keeps that one’s grants: the next claim is still refused', async () => {
    const quota = () => 4;
    const bob: Caller = { principal: { type: 'user', id: 'bob', tenantId: 'shared-name' } as Principal, token: 'bob.token' };
    const running = instance('shared', quota);
    await running.recover();
    const sandbox = await running.create(bob, SESSION, 'small');
    const before = requests.length;
    // 'small' is half a core: 8 s of timeout is the whole quota of 4
    const spin = running.exec(bob, sandbox.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    await untilRunning(before + 1, spin);
    // a second process under the same name starts (and a third, restarted) while the spin runs
    const other = instance('shared', quota);
    await other.recover();
    await other.close();
    const restarted = instance('shared', quota);
    await restarted.recover();
    expect((await grants()).filter(([i]) => i === 'shared')).toEqual([['shared', 4]]);
    const next = await restarted.create(bob, SESSION, 'small');
    await expect(restarted.exec(bob, next.id, { command: ['/bin/spin'], timeoutMs: 8000 })).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'cpu-seconds', limit: 4, used: 0, running: 4 } } });
    finishers[before](1);
    expect(await spin).toMatchObject({ status: 'finished', usage: { cpuSeconds: 1 } });
    await Promise.all([running.close(), restarted.close()]);
    expect((await grants()).filter(([i]) => i === 'shared')).toEqual([]);
  });

  it('a grant expires by PostgreSQL’s clock: an orchestrator whose clock is minutes behind still holds its grant while its execution runs', async () => {
    const dave: Caller = { principal: { type: 'user', id: 'dave', tenantId: 'skewed' } as Principal, token: 'dave.token' };
    const behind = instance('inst-skew', () => 4, () => new Date(Date.now() - 10 * 60_000));
    const sandbox = await behind.create(dave, SESSION, 'small');
    const before = requests.length;
    const spin = behind.exec(dave, sandbox.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    await untilRunning(before + 1, spin);
    const [row]: Array<{ ttl: number }> = await db.dataSource.query(`SELECT extract(epoch FROM expires_at - now()) AS ttl FROM sandbox_cpu_grants WHERE tenant_id = 'skewed'`);
    expect(Number(row.ttl)).toBeGreaterThan(60);
    const next = await behind.create(dave, SESSION, 'small');
    await expect(behind.exec(dave, next.id, { command: ['/bin/spin'], timeoutMs: 8000 })).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'cpu-seconds', limit: 4, running: 4 } } });
    finishers[before](1);
    await spin;
  });

  it('kills an execution running in real crun with reason quota once the tenant’s quota is lowered below what it used (the bound asked while it runs)', async () => {
    const runDir = '/run/palisade-sandbox-test';
    const name = `cpuq${process.pid}`;
    const runtime = new CrunRuntime({ crun: process.env.SANDBOX_CRUN ?? 'crun', runDir, instance: name, warm: true });
    await runtime.check();
    // a tenant of its own: nothing used yet
    const carol: Caller = { principal: { type: 'user', id: 'carol', tenantId: 'lowered' } as Principal, token: 'carol.token' };
    let quota = 60;
    const orchestrator = service(name, runtime, () => quota);
    try {
      const sandbox = await orchestrator.create(carol, SESSION, 'default');
      // granted its worst case (one core for 60 s: the whole quota); once it runs the quota falls by 59.7 to 0.3, and so does its bound
      const spin = orchestrator.exec(carol, sandbox.id, { command: ['/usr/bin/python3', '-c', 'print("spinning", flush=True)\nwhile True: pass'], timeoutMs: 60_000 }, { onStdout: () => void (quota = 0.3) });
      const ended = await spin;
      expect(ended).toMatchObject({ status: 'finished', reason: 'quota', signal: 'SIGKILL', exitCode: null });
      expect(ended.usage!.cpuSeconds).toBeGreaterThanOrEqual(0.3);
      expect(ended.usage!.cpuSeconds).toBeLessThan(5);
      expect(ended.usage!.wallSeconds).toBeLessThan(30);
      // its grant left with its end; nothing is left of the quota now: the next one is refused before it runs
      expect(await grants()).toEqual([]);
      await expect(orchestrator.exec(carol, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'cpu-seconds' } } });
    } finally {
      await runtime.reconcile(new Set());
      rmSync(`${runDir}/${name}`, { recursive: true, force: true });
    }
  });
});
