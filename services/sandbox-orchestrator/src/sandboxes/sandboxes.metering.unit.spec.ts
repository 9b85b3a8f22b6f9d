import { PalisadeError } from '@palisade/contracts';
import { alice, bot, outcome, runtimeOf, serviceHarness } from '../../test/sandboxes.memory';
import { LedgerExecutionBilling, type ExecutionBilling } from './sandboxes.billing';
import type { SandboxEvent, UsageRecorded } from './sandboxes.events';
import { billedSubjectOf, meteredQuantities, worstCaseUsage } from './sandboxes.metering';
import { SANDBOX_TEMPLATES } from './sandboxes.templates';

/** A ledger stand-in: quotes Σ quantities (1 µ per unit), holds within a budget, records releases. */
function ledgerStandIn(budgetMicros = 1_000_000_000n) {
  const l = {
    reserves: [] as Array<Record<string, unknown>>,
    releases: [] as string[],
    quotes: [] as Array<{ model: string; usage: ReadonlyArray<{ kind: string; quantity: number }> }>,
    failQuote: false,
    quote: async (q: { model: string; usage: ReadonlyArray<{ kind: string; quantity: number }> }) => {
      if (l.failQuote) throw new PalisadeError('unavailable', 'billing cannot be reached: refused');
      l.quotes.push(q);
      return q.usage.reduce((s, u) => s + BigInt(u.quantity), 0n);
    },
    reserve: async (r: Record<string, unknown>) => {
      l.reserves.push(r);
      return BigInt(r.amountMicros as bigint) <= budgetMicros ? { status: 'held' as const, expiresAt: '' } : { status: 'refused' as const, level: 'agent' as const, limitMicros: Number(budgetMicros), resetsAt: '2026-12-04T00:00:00.000Z' };
    },
    release: async (r: { requestId: string }) => void l.releases.push(r.requestId),
  };
  return l;
}

const usageEvents = (events: SandboxEvent[]) => events.filter((e) => e.type === 'sandbox-orchestrator.usage.recorded').map((e) => e.data as UsageRecorded);

describe('metering for billing', () => {
  it('meters whole units of billing’s kinds, rounded up; the worst case is the limits for the whole timeout', () => {
    expect(meteredQuantities({ cpuSeconds: 0.0004, memoryGbSeconds: 0.5, wallSeconds: 1.2 })).toEqual([
      { kind: 'cpu_ms', quantity: 1 },
      { kind: 'memory_mb_ms', quantity: 512_000 },
      { kind: 'wall_ms', quantity: 1200 },
    ]);
    expect(meteredQuantities(worstCaseUsage(SANDBOX_TEMPLATES.small, 30_000))).toEqual([
      { kind: 'cpu_ms', quantity: 15_000 },
      { kind: 'memory_mb_ms', quantity: 256 * 30_000 },
      { kind: 'wall_ms', quantity: 30_000 },
    ]);
    expect(billedSubjectOf(bot.principal)).toEqual({ agentId: 'fetch-bot', userId: 'alice', teamId: 'platform' });
    expect(billedSubjectOf(alice.principal)).toEqual({ agentId: 'user:alice', userId: 'alice' });
  });

  it('holds the worst case under the execution id before the program runs, then records one usage event settling it with the priced actual', async () => {
    const ledger = ledgerStandIn();
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    let heldWhenRun = 0;
    h.runtimeExec = runtimeOf(async () => {
      heldWhenRun = ledger.reserves.length;
      return outcome({ cpuSeconds: 0.25, memoryGbSeconds: 0.001, wallSeconds: 0.5 });
    });
    const sandbox = await h.service.create(bot, 's1', 'small');
    const execution = await h.service.exec(bot, sandbox.id, { command: ['/bin/true'], timeoutMs: 10_000 });
    expect(heldWhenRun).toBe(1);
    const worst = 5000 + 256 * 10_000 + 10_000;
    expect(ledger.reserves[0]).toEqual({ tenantId: 'acme', requestId: execution.id, agentId: 'fetch-bot', userId: 'alice', teamId: 'platform', amountMicros: BigInt(worst), ttlMs: 70_000 });
    expect(usageEvents(h.repo.events)).toEqual([
      {
        sandboxId: sandbox.id,
        sessionId: 's1',
        executionId: execution.id,
        requestId: execution.id,
        agentId: 'fetch-bot',
        model: 'small',
        actualMicros: String(250 + 1024 + 500),
        usage: [
          { kind: 'cpu_ms', quantity: 250 },
          { kind: 'memory_mb_ms', quantity: 1024 },
          { kind: 'wall_ms', quantity: 500 },
        ],
      },
    ]);
    expect(ledger.quotes.map((q) => q.model)).toEqual(['small', 'small']);
  });

  it('refuses an execution whose budget has no room: 429 naming the budget, nothing started, nothing metered', async () => {
    const ledger = ledgerStandIn(10n);
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    let ran = false;
    h.runtimeExec = runtimeOf(async () => {
      ran = true;
      return outcome();
    });
    const sandbox = await h.service.create(bot, 's1', 'small');
    const refused = await h.service.exec(bot, sandbox.id, { command: ['/bin/true'] }).catch((e: PalisadeError) => e);
    expect(refused).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^the agent budget has no room for this execution \(limit 10 micro-units, resets at 2026-12-04/), details: { budget: { level: 'agent', limitMicros: 10 } } });
    expect(ran).toBe(false);
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created']);
  });

  it('fails closed when billing cannot hold or has no price: nothing runs', async () => {
    const ledger = ledgerStandIn();
    ledger.failQuote = true;
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    const sandbox = await h.service.create(bot, 's1', 'small');
    await expect(h.service.exec(bot, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'unavailable' });
    const noPrice = new LedgerExecutionBilling({ ...ledgerStandIn(), quote: async () => Promise.reject(new PalisadeError('not_found', 'billing: no price for sandbox/small cpu_ms')) });
    await expect(noPrice.price('acme', 'small', [])).rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('no price for sandbox usage of template small') });
    expect(h.repo.events.filter((e) => e.type === 'sandbox-orchestrator.sandbox.exec_started')).toEqual([]);
  });

  it('releases the hold when the execution cannot start (one already runs), and when it was lost to a crash (never billed)', async () => {
    const ledger = ledgerStandIn();
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    let finishFirst!: () => void;
    h.runtimeExec = runtimeOf(() => new Promise((resolve) => (finishFirst = () => resolve(outcome()))));
    const sandbox = await h.service.create(bot, 's1', 'small');
    const first = h.service.exec(bot, sandbox.id, { command: ['/bin/sleep', '1'] });
    await new Promise((r) => setTimeout(r, 10));
    await expect(h.service.exec(bot, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'conflict' });
    expect(ledger.releases).toEqual([ledger.reserves[1].requestId]);
    finishFirst();
    await first;

    // an execution recorded as running when the orchestrator died: lost, its hold released, no usage event
    const crashed = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    crashed.runtimeExec = runtimeOf(() => new Promise(() => undefined));
    const sb = await crashed.service.create(bot, 's1', 'small');
    void crashed.service.exec(bot, sb.id, { command: ['/bin/sleep', '60'] });
    await new Promise((r) => setTimeout(r, 10));
    const lostId = crashed.repo.rows.get(sb.id)!.runningExecution!;
    await crashed.service.recover();
    expect(ledger.releases).toContain(lostId);
    expect(usageEvents(crashed.repo.events)).toEqual([]);
    expect(crashed.repo.events.find((e) => e.type === 'sandbox-orchestrator.sandbox.exec_finished')?.data).toMatchObject({ executionId: lostId, reason: 'lost' });
  });

  it('charges the hold, marked estimated, when the actual cannot be priced after the run; never more than the hold', async () => {
    const ledger = ledgerStandIn();
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    h.runtimeExec = runtimeOf(async () => {
      ledger.failQuote = true;
      return outcome();
    });
    const sandbox = await h.service.create(bot, 's1', 'small');
    const execution = await h.service.exec(bot, sandbox.id, { command: ['/bin/true'], timeoutMs: 1000 });
    const [event] = usageEvents(h.repo.events);
    expect(event).toMatchObject({ requestId: execution.id, actualMicros: String(ledger.reserves[0].amountMicros) });
    expect(event.usage).toContainEqual({ kind: 'estimated', quantity: 1 });
    // a usage beyond the worst case (e.g. CPU accounted past the kill) is capped at the hold
    const over = serviceHarness({ billing: new LedgerExecutionBilling(ledgerStandIn()) });
    over.runtimeExec = runtimeOf(async () => outcome({ cpuSeconds: 50, memoryGbSeconds: 50, wallSeconds: 50 }));
    const sb = await over.service.create(bot, 's1', 'small');
    await over.service.exec(bot, sb.id, { command: ['/bin/true'], timeoutMs: 1000 });
    expect(usageEvents(over.repo.events)[0].actualMicros).toBe(String(500 + 256_000 + 1000));
  });

  it('without billing: no hold, the usage event still says what was used, at 0', async () => {
    const h = serviceHarness();
    const sandbox = await h.service.create(alice, 's1', 'small');
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    expect(usageEvents(h.repo.events)).toEqual([expect.objectContaining({ agentId: 'user:alice', actualMicros: '0', model: 'small' })]);
  });
});

describe('tenant quotas and the sandbox lifetime', () => {
  it('refuses a sandbox past the tenant’s concurrent sandboxes (429 naming the quota); a stopped one frees its place', async () => {
    const h = serviceHarness();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await h.service.create(alice, 's1', 'small'));
    const refused = await h.service.create(alice, 's1', 'small').catch((e: PalisadeError) => e);
    expect(refused).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^quota concurrent-sandboxes: .*\(limit 5\)/), details: { quota: { name: 'concurrent-sandboxes', limit: 5 } } });
    await h.service.stop(alice, made[0].id);
    await expect(h.service.create(alice, 's1', 'small')).resolves.toMatchObject({ status: 'ready' });
  });

  it('refuses a creation that lost the race for the last place (the count in its own transaction), and removes its workspace', async () => {
    const h = serviceHarness();
    h.repo.readyCount = async () => 0; // the pre-check saw room; the locked count sees 6
    h.repo.readyCountLocked = async () => 6;
    await expect(h.service.create(alice, 's1', 'small')).rejects.toMatchObject({ code: 'rate_limited' });
    expect(h.removed).toHaveLength(1);
  });

  it('refuses an execution once the tenant used its CPU-seconds in the window (429 naming the quota)', async () => {
    const h = serviceHarness();
    const sandbox = await h.service.create(alice, 's1', 'small');
    h.repo.cpu.seconds = 99.9;
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).resolves.toMatchObject({ status: 'finished' });
    h.repo.cpu.seconds = 100;
    const refused = await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] }).catch((e: PalisadeError) => e);
    expect(refused).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/^quota cpu-seconds: .*\(limit 100\)/), details: { quota: { name: 'cpu-seconds', limit: 100 } } });
  });

  it('enforces a tenant’s own quotas where it set them: its sandboxes, its CPU-seconds (429), the other tenants the platform’s', async () => {
    const own = { maxSandboxes: 2, cpuSeconds: 10 };
    const h = serviceHarness({ tenantQuotas: async (tenantId) => (tenantId === 'acme' ? own : { maxSandboxes: 5, cpuSeconds: 100 }) });
    await h.service.create(alice, 's1', 'small');
    const second = await h.service.create(alice, 's1', 'small');
    await expect(h.service.create(alice, 's1', 'small')).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'concurrent-sandboxes', limit: 2 } } });
    h.repo.cpu.seconds = 10;
    await expect(h.service.exec(alice, second.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'rate_limited', details: { quota: { name: 'cpu-seconds', limit: 10 } } });
    own.cpuSeconds = 100; // a change applies to the next execution
    await expect(h.service.exec(alice, second.id, { command: ['/bin/true'] })).resolves.toMatchObject({ status: 'finished' });
  });

  it('gives the runtime the tenant’s CPU-seconds left as the execution’s bound, and records a kill past it as reason quota (metered)', async () => {
    const h = serviceHarness({ tenantQuotas: async () => ({ maxSandboxes: 5, cpuSeconds: 10 }) });
    const limits: Array<number | undefined> = [];
    h.runtimeExec = runtimeOf(async (_s, _e, request) => {
      limits.push(request.cpuSecondsLimit);
      return { ...outcome({ cpuSeconds: 2.5, memoryGbSeconds: 0.01, wallSeconds: 5 }), exitCode: null, signal: 'SIGKILL', reason: 'quota' };
    });
    const sandbox = await h.service.create(alice, 's1', 'small');
    h.repo.cpu.seconds = 7.5;
    const execution = await h.service.exec(alice, sandbox.id, { command: ['/usr/bin/python3', '-c', 'while True: pass'] });
    expect(limits).toEqual([2.5]);
    expect(h.repo.events.find((e) => e.type === 'sandbox-orchestrator.sandbox.exec_finished')?.data).toMatchObject({ executionId: execution.id, reason: 'quota', signal: 'SIGKILL' });
    expect(usageEvents(h.repo.events)).toEqual([expect.objectContaining({ executionId: execution.id, usage: expect.arrayContaining([{ kind: 'cpu_ms', quantity: 2500 }]) })]);
    // the quota is used up now: the next one is refused before anything runs
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'rate_limited' });
    expect(limits).toHaveLength(1);
  });

  it('gives each sandbox a lifetime: executions end by it, nothing runs after it, and it is stopped for that reason', async () => {
    let now = new Date('2026-12-03T10:00:00.000Z');
    const h = serviceHarness({ now: () => now });
    const timeouts: number[] = [];
    h.runtimeExec = runtimeOf(async (_s, _e, request) => {
      timeouts.push(request.timeoutMs);
      return outcome();
    });
    const sandbox = await h.service.create(alice, 's1', 'small');
    expect(sandbox.expiresAt).toBe('2026-12-03T11:00:00.000Z');
    now = new Date('2026-12-03T10:59:50.000Z');
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'], timeoutMs: 30_000 });
    expect(timeouts).toEqual([10_000]);
    now = new Date('2026-12-03T11:00:00.000Z');
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'illegal_state', message: 'sandbox reached its lifetime limit' });
    await expect(h.service.stopExpired()).resolves.toBe(1);
    expect(h.repo.events.at(-1)).toEqual({ type: 'sandbox-orchestrator.sandbox.stopped', data: { sandboxId: sandbox.id, sessionId: 's1', reason: 'lifetime' } });
    expect(h.removed).toEqual([sandbox.id]);
  });
});

// the interface the service is written against stays what the adapter implements
const _typed: ExecutionBilling = new LedgerExecutionBilling(ledgerStandIn());
void _typed;
