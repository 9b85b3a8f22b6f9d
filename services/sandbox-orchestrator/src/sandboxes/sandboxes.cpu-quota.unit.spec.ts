import type { ExecRequest } from '../runtime/runtime.port';
import { alice, outcome, serviceHarness } from '../../test/sandboxes.memory';
import { cpuLimitNow } from './sandboxes.cpu-grants';

/**
 * A tenant's CPU-seconds quota with executions running at once on one instance: together
 * they are granted at most what the tenant has left, and a quota lowered meanwhile bounds
 * the running ones (the runtime asks `cpuSecondsLimitNow` again while they run).
 */
describe('SandboxesService: the tenant CPU-seconds quota with concurrent executions', () => {
  /** A runtime stand-in holding each program until `finish` (with its CPU-seconds), recording its request. */
  function heldRuntime() {
    const requests: ExecRequest[] = [];
    const finishers: Array<(cpuSeconds: number) => void> = [];
    return {
      requests,
      finish: (i: number, cpuSeconds: number) => finishers[i](cpuSeconds),
      exec: (_sandboxId: string, _executionId: string, request: ExecRequest) => {
        requests.push(request);
        const result = Promise.resolve(request.startWhen).then(() => new Promise<ReturnType<typeof outcome>>((resolve) => finishers.push((cpuSeconds) => resolve(outcome({ cpuSeconds, memoryGbSeconds: 0, wallSeconds: 1 })))));
        return { result, kill: () => undefined };
      },
    };
  }

  const settle = () => new Promise((r) => setImmediate(r));

  it('two concurrent executions are granted in sum at most the remainder; the next is refused (429) until one ends', async () => {
    const runtime = heldRuntime();
    const h = serviceHarness({ tenantQuotas: async () => ({ maxSandboxes: 5, cpuSeconds: 10 }) });
    h.runtimeExec = runtime.exec;
    h.repo.cpu.seconds = 4; // 6 left
    const [a, b] = [await h.service.create(alice, 's1', 'small'), await h.service.create(alice, 's1', 'small')];
    // 'small' is half a core: 8 s of timeout is at most 4 CPU-seconds each
    const first = h.service.exec(alice, a.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    const second = h.service.exec(alice, b.id, { command: ['/bin/spin'], timeoutMs: 8000 });
    while (runtime.requests.length < 2) await settle();
    const granted = runtime.requests.map((r) => r.cpuSecondsLimit!);
    expect(granted).toEqual([4, 2]);
    expect(granted[0] + granted[1]).toBeLessThanOrEqual(6);
    const c = await h.service.create(alice, 's1', 'small');
    await expect(h.service.exec(alice, c.id, { command: ['/bin/spin'], timeoutMs: 8000 })).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'cpu-seconds', limit: 10, used: 4, running: 6 } } });
    // the first ends having used 1 of its 4: its usage is committed, its grant released (5 left)
    runtime.finish(0, 1);
    await first;
    const third = h.service.exec(alice, c.id, { command: ['/bin/spin'], timeoutMs: 20_000 });
    while (runtime.requests.length < 3) await settle();
    expect(runtime.requests[2].cpuSecondsLimit).toBe(3); // 10 − 5 used − 2 granted to the second
    runtime.finish(1, 2);
    runtime.finish(2, 3);
    await Promise.all([second, third]);
  });

  it('a quota lowered while an execution runs lowers its bound: at or below what it used, the runtime kills it', async () => {
    const runtime = heldRuntime();
    let quota = 10;
    const h = serviceHarness({ tenantQuotas: async () => ({ maxSandboxes: 5, cpuSeconds: quota }) });
    h.runtimeExec = runtime.exec;
    const sandbox = await h.service.create(alice, 's1', 'small');
    const running = h.service.exec(alice, sandbox.id, { command: ['/bin/spin'], timeoutMs: 30_000 });
    while (runtime.requests.length < 1) await settle();
    const request = runtime.requests[0];
    expect(request.cpuSecondsLimit).toBe(10);
    expect(await request.cpuSecondsLimitNow!()).toBe(10);
    quota = 3; // an administrator lowers the tenant's quota (seen through the 5 s cache)
    expect(await request.cpuSecondsLimitNow!()).toBe(3);
    quota = 20; // raised: never more than was granted
    expect(await request.cpuSecondsLimitNow!()).toBe(10);
    runtime.finish(0, 1);
    await running;
  });

  it('releases a grant when nothing starts (the start refused), and with the end once it ran; a restart drops the instance’s grants', async () => {
    const h = serviceHarness({ tenantQuotas: async () => ({ maxSandboxes: 5, cpuSeconds: 10 }) });
    const sandbox = await h.service.create(alice, 's1', 'small');
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    expect(h.repo.grants.size).toBe(0);
    // stopped between the read of its row and the start: the start is refused on the locked row (409), nothing runs
    const stopped = { ...h.repo.rows.get(sandbox.id)!, status: 'ready' as const };
    await h.service.stop(alice, sandbox.id);
    h.repo.sandbox = async () => stopped;
    const claim = h.repo.claimCpu;
    let claimed = 0;
    h.repo.claimCpu = async (c) => {
      const answer = await claim(c);
      claimed += answer.granted ?? 0;
      return answer;
    };
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'illegal_state' });
    expect(claimed).toBeGreaterThan(0);
    expect(h.repo.grants.size).toBe(0);
    h.repo.grants.set('left-by-a-crash', { tenantId: 'acme', instance: 'unit', cpuSeconds: 9 });
    h.repo.grants.set('another-instance', { tenantId: 'acme', instance: 'other', cpuSeconds: 1 });
    // a process still alive under the same instance name (a rolling restart's overlap) keeps its grant; a gone one's is dropped
    h.repo.liveBoots.add('alive');
    h.repo.grants.set('same-name-alive', { tenantId: 'acme', instance: 'unit', boot: 'alive', cpuSeconds: 1 });
    h.repo.grants.set('same-name-gone', { tenantId: 'acme', instance: 'unit', boot: 'gone', cpuSeconds: 1 });
    await h.service.recover();
    expect([...h.repo.grants.keys()]).toEqual(['another-instance', 'same-name-alive']);
  });
});

describe('cpuLimitNow', () => {
  it('lowers a grant by what the quota was lowered by since the claim, and never raises it', () => {
    expect(cpuLimitNow({ limit: 6, quota: 10 }, 10)).toBe(6);
    expect(cpuLimitNow({ limit: 6, quota: 10 }, 7)).toBe(3);
    expect(cpuLimitNow({ limit: 6, quota: 10 }, 2)).toBe(-2);
    expect(cpuLimitNow({ limit: 6, quota: 10 }, 50)).toBe(6);
  });
});
