import { InMemoryEventStore, type EventStore } from '@palisade/eventsourcing';
import type { AuthorizeRequest } from '@palisade/policy-client';
import type { Principal } from '@palisade/contracts';
import { alice, outcome, runtimeOf, serviceHarness, session } from '../../test/sandboxes.memory';
import type { SessionRow } from '../sessions/sessions.repository';
import { LedgerExecutionBilling } from './sandboxes.billing';
import type { SandboxRow } from './sandboxes.repository';

/** What GET answers for a row (the fields the create answer must share with it). */
const viewOf = (row: SandboxRow) => ({ id: row.sandboxId, sessionId: row.sessionId, template: row.template, limits: row.limits, status: row.status, expiresAt: row.expiresAt });

/**
 * The path of an execution before its program runs (the exec first byte): what does not
 * depend on each other is asked at once, a command reads the sandbox's row rather than its
 * whole stream, and the program still runs only after the hold and `exec_started`.
 */

/** An event store counting the reads of sandbox streams. */
function countingStore(): EventStore & { sandboxReads: () => number } {
  const inner = new InMemoryEventStore();
  let reads = 0;
  return {
    inTransaction: (work) => inner.inTransaction(work),
    readStream: async (tx, id) => {
      if (id.startsWith('sandbox-')) reads++;
      return inner.readStream(tx, id);
    },
    appendToStream: (tx, id, events, expected) => inner.appendToStream(tx, id, events, expected),
    sandboxReads: () => reads,
  };
}

/**
 * A policy stand-in that records the actions asked in each turn of the event loop (what the
 * client sends as one request) and allows what `allowed` says (else a deny by rule `viewer`).
 */
function turnsOfPolicy() {
  const turns: string[][] = [];
  let turn: string[] | undefined;
  const policy = {
    turns,
    allowed: (_r: AuthorizeRequest) => true,
    authorize: async (r: AuthorizeRequest) => {
      if (!turn) {
        turns.push((turn = []));
        setImmediate(() => (turn = undefined));
      }
      turn.push(r.action);
      await new Promise((resolve) => setImmediate(resolve));
      return policy.allowed(r) ? ({ decision: 'allow', rule: 'test', reason: 'ok' } as const) : ({ decision: 'deny', rule: 'viewer', reason: 'no' } as const);
    },
  };
  return policy;
}

describe('SandboxesService: the execution path', () => {
  it('asks read, write and invoke in one turn (one request of the policy client), not read first', async () => {
    const turns: string[][] = [];
    let turn: string[] | undefined;
    let recording = false;
    const h = serviceHarness({
      policy: () => ({
        authorize: async (r: AuthorizeRequest) => {
          if (recording && !turn) {
            turns.push((turn = []));
            setImmediate(() => (turn = undefined));
          }
          turn?.push(r.action);
          await new Promise((resolve) => setImmediate(resolve));
          return { decision: 'allow', rule: 'test', reason: 'ok' };
        },
      }),
    });
    const sandbox = await h.service.create(alice, 's1', 'small');
    recording = true;
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    expect(turns[0]).toEqual(['read', 'write', 'invoke']);
    expect(turns).toHaveLength(1);
  });

  it('creates after read and write asked in one turn; a non-reader 404, a reader who may not write 403, nothing prepared for either', async () => {
    const policy = turnsOfPolicy();
    const { turns } = policy;
    let prepared = 0;
    const h = serviceHarness({
      policy: () => policy,
      runtime: { check: async () => undefined, create: async () => void prepared++, exec: runtimeOf(async () => outcome()), stop: async () => undefined, remove: async () => undefined, reconcile: async () => ({ containers: [], workspaces: [] }) },
    });
    const made = await h.service.create(alice, 's1', 'small');
    expect(turns).toEqual([['read', 'write']]);
    // the view is the row the projection wrote
    expect(made).toMatchObject({ ...viewOf(h.repo.rows.get(made.id)!), etag: 1 });
    expect(prepared).toBe(1);
    policy.allowed = (r) => r.action !== 'read';
    await expect(h.service.create(alice, 's1', 'small')).rejects.toMatchObject({ code: 'not_found', message: 'session not found' });
    policy.allowed = (r) => r.action !== 'write';
    await expect(h.service.create(alice, 's1', 'small')).rejects.toMatchObject({ code: 'forbidden', details: { rule: 'viewer' } });
    expect(prepared).toBe(1);
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created']);
  });

  it('a refused read is still a 404 (nothing recorded), a refused invoke a 403 with exec_refused', async () => {
    const h = serviceHarness();
    const sandbox = await h.service.create(alice, 's1', 'small');
    h.decide = (r) => (r.action === 'read' ? { decision: 'deny', rule: 'default-deny', reason: 'no' } : { decision: 'allow', rule: 'test', reason: 'ok' });
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'not_found' });
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created']);
    h.decide = (r) => (r.action === 'invoke' ? { decision: 'deny', rule: 'agent-tool-allowlist', reason: 'no' } : { decision: 'allow', rule: 'test', reason: 'ok' });
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'forbidden', details: { rule: 'agent-tool-allowlist' } });
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created', 'sandbox-orchestrator.sandbox.exec_refused']);
  });

  it('decides commands on the sandbox’s row: its stream is read at creation only, and the decisions stay the stream’s', async () => {
    const store = countingStore();
    const h = serviceHarness({ store });
    const sandbox = await h.service.create(alice, 's1', 'small');
    expect(store.sandboxReads()).toBe(1);
    for (let i = 0; i < 3; i++) await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    await h.service.stop(alice, sandbox.id);
    expect(store.sandboxReads()).toBe(1);
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'illegal_state', message: 'sandbox is stopped' });
    // every event appended at the version the row held: the stream is whole and in order
    const stream = await store.inTransaction((tx) => store.readStream(tx, `sandbox-${sandbox.id}`));
    expect(stream.events.map((e) => e.event.type.split('.').pop())).toEqual(['created', ...Array(3).fill(['exec_started', 'exec_finished', 'recorded']).flat(), 'stopped']);
    expect(h.repo.rows.get(sandbox.id)?.version).toBe(stream.version);
  });

  it('asks an execution’s decisions while the rows are read when the sandbox’s session was read before, and keeps them only for the session read now', async () => {
    const policy = turnsOfPolicy();
    let current: SessionRow = { ...session, owner: 'alice', collaborators: [] };
    const reads: string[] = [];
    const h = serviceHarness({
      policy: () => policy,
      sessions: {
        session: async () => {
          reads.push('session');
          await new Promise((resolve) => setImmediate(resolve));
          return current;
        },
      },
    });
    // the policy stand-in allows write and invoke only while the session it is told of names alice as owner
    policy.allowed = (r) => r.action === 'read' || (r.resource.attributes as { owner?: string } | undefined)?.owner === 'alice' || r.resource.type === 'tool';
    const sandbox = await h.service.create(alice, 's1', 'small');
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    policy.turns.length = 0;
    reads.length = 0;
    // asked in the same turn as the rows' read (before the session's answer), one request
    const running = h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toEqual(['session']);
    expect(policy.turns).toEqual([['read', 'write', 'invoke']]);
    await running;
    expect(policy.turns).toHaveLength(1);
    // the session changed since (alice no longer its owner): what was asked about the old one is not used; asked again, refused
    current = { ...session, owner: 'carol', collaborators: [], viewers: ['alice'] };
    policy.turns.length = 0;
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'forbidden' });
    expect(policy.turns).toEqual([['read', 'write', 'invoke'], ['read', 'write', 'invoke']]);
  });

  it('asks nothing early for a caller of another tenant: 404, the policy service not asked', async () => {
    const policy = turnsOfPolicy();
    const h = serviceHarness({ policy: () => policy });
    const sandbox = await h.service.create(alice, 's1', 'small');
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    policy.turns.length = 0;
    const mallory = { principal: { type: 'user', id: 'mallory', tenantId: 'other' } as Principal, token: 'mallory.token' };
    await expect(h.service.exec(mallory, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'not_found' });
    expect(policy.turns).toEqual([]);
  });

  it('asks the CPU used, the quotas and the quote only once the policy allowed: a non-reader (404) and a caller refused write or invoke (403) cause none of them', async () => {
    const asked: string[] = [];
    const ledger = { quote: async () => (asked.push('quote'), 10n), reserve: async () => ({ status: 'held' as const, expiresAt: '' }), release: async () => undefined };
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger), tenantQuotas: async () => (asked.push('quotas'), { maxSandboxes: 5, cpuSeconds: 100 }) });
    const cpu = h.repo.claimCpu;
    h.repo.claimCpu = (...a) => (asked.push('cpu'), cpu(...a));
    const sandbox = await h.service.create(alice, 's1', 'small');
    asked.length = 0;
    for (const refused of ['read', 'write', 'invoke']) {
      h.decide = (r) => (r.action === refused ? { decision: 'deny', rule: 'no', reason: 'no' } : { decision: 'allow', rule: 'test', reason: 'ok' });
      await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: refused === 'read' ? 'not_found' : 'forbidden' });
    }
    expect(asked).toEqual([]);
    h.decide = () => ({ decision: 'allow', rule: 'test', reason: 'ok' });
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    expect(asked.slice(0, 3).sort()).toEqual(['cpu', 'quotas', 'quote']); // then the usage's price, after the run
  });

  it('stop and delete ask read and write in one request: a non-reader 404, a reader who may not write 403, nothing recorded for either', async () => {
    const policy = turnsOfPolicy();
    const { turns } = policy;
    const h = serviceHarness({ policy: () => policy });
    const sandbox = await h.service.create(alice, 's1', 'small');
    for (const [refused, code] of [['read', 'not_found'], ['write', 'forbidden']]) {
      policy.allowed = (r) => r.action !== refused;
      turns.length = 0;
      await expect(h.service.stop(alice, sandbox.id)).rejects.toMatchObject({ code });
      await expect(h.service.delete(alice, sandbox.id)).rejects.toMatchObject({ code });
      expect(turns).toEqual([['read', 'write'], ['read', 'write']]);
    }
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created']);
    policy.allowed = () => true;
    turns.length = 0;
    await h.service.stop(alice, sandbox.id);
    await h.service.delete(alice, sandbox.id);
    expect(turns).toEqual([['read', 'write'], ['read', 'write']]);
    expect(h.repo.events.map((e) => e.type.split('.').pop())).toEqual(['created', 'stopped', 'deleted']);
  });

  it('quotes the worst case after the allow, holds it, and runs the program only after the hold and exec_started', async () => {
    const order: string[] = [];
    const ledger = {
      quote: async (q: { usage: ReadonlyArray<{ quantity: number }> }) => (order.push('quote'), q.usage.reduce((s, u) => s + BigInt(u.quantity), 0n)),
      reserve: async () => (order.push('reserve'), { status: 'held' as const, expiresAt: '' }),
      release: async () => undefined,
    };
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    const sandbox = await h.service.create(alice, 's1', 'small');
    h.decide = (r) => (order.push(`policy ${r.action}`), { decision: 'allow', rule: 'test', reason: 'ok' });
    h.runtimeExec = (sandboxId, executionId, request) => {
      order.push('runtime called');
      return runtimeOf(async () => {
        order.push(`program runs (started: ${h.repo.rows.get(sandbox.id)?.runningExecution === executionId})`);
        return outcome();
      })(sandboxId, executionId, request);
    };
    await h.service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    expect(order.indexOf('quote')).toBeGreaterThan(order.indexOf('policy invoke'));
    expect(order.indexOf('reserve')).toBeGreaterThan(order.indexOf('quote'));
    expect(order.indexOf('runtime called')).toBeGreaterThan(order.indexOf('policy invoke'));
    expect(order.filter((o) => o.startsWith('program runs'))).toEqual(['program runs (started: true)']);
    expect(order.indexOf('program runs (started: true)')).toBeGreaterThan(order.indexOf('reserve'));
  });

  it('gives the runtime’s prepared program up when the start is refused: nothing runs, the hold is released', async () => {
    const released: string[] = [];
    const ledger = { quote: async () => 10n, reserve: async () => ({ status: 'held' as const, expiresAt: '' }), release: async (r: { requestId: string }) => void released.push(r.requestId) };
    const h = serviceHarness({ billing: new LedgerExecutionBilling(ledger) });
    const sandbox = await h.service.create(alice, 's1', 'small');
    let ran = 0;
    let gaveUp: unknown;
    h.runtimeExec = (sandboxId, executionId, request) => {
      void Promise.resolve(request.startWhen).catch((e: unknown) => (gaveUp = e));
      return runtimeOf(async () => (ran++, outcome()))(sandboxId, executionId, request);
    };
    // over the sandbox's timeout: the decider refuses the start after the hold
    await expect(h.service.exec(alice, sandbox.id, { command: ['/bin/true'], timeoutMs: 10 * 60_000 })).rejects.toMatchObject({ code: 'validation' });
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(0);
    expect(gaveUp).toMatchObject({ code: 'validation' });
    expect(released).toHaveLength(1);
    expect(h.repo.events.map((e) => e.type)).toEqual(['sandbox-orchestrator.sandbox.created']);
  });
});
