import { systemEventContext, type EventEnvelope, type Principal } from '@palisade/contracts';
import { InMemoryEventStore } from '@palisade/eventsourcing';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import { ExecutionTokens } from '../egress/egress.execution-tokens';
import type { ExecResult, SandboxRuntime } from '../runtime/runtime.port';
import type { SessionRow } from '../sessions/sessions.repository';
import type { Caller } from '../sessions/sessions.service';
import type { ExecutionRow, SandboxesRepository, SandboxRow } from './sandboxes.repository';
import { SandboxesService } from './sandboxes.service';

/**
 * The caller's token is held for the egress proxy's lease grants exactly while its
 * execution runs: from before the program starts until its end, whatever the end.
 */
const bot: Caller = { principal: { type: 'agent', id: 'fetch-bot', tenantId: 'acme', actingFor: 'alice' } as Principal, agentToken: 'the.agent.token', token: 'the.agent.token' };
const session: SessionRow = { tenantId: 'acme', sessionId: 's1', owner: 'alice', collaborators: [], viewers: [], agents: ['fetch-bot'], status: 'active', version: 1, createdAt: '', updatedAt: '' };

function memoryRepository(): Pick<SandboxesRepository, 'sandbox' | 'sandboxesOf' | 'liveSandboxes' | 'idleSince' | 'execution' | 'storeOutput' | 'projection'> {
  const rows = new Map<string, SandboxRow>();
  return {
    sandbox: async (tenantId, id) => (rows.get(id)?.tenantId === tenantId ? rows.get(id) : undefined),
    sandboxesOf: async () => [...rows.values()],
    liveSandboxes: async () => [],
    idleSince: async () => [],
    execution: async (_tenant, sandboxId, executionId) => ({ sandboxId, executionId, program: 'sh', status: 'finished', exitCode: 0, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false, startedAt: '' }) as ExecutionRow,
    storeOutput: async () => undefined,
    projection: {
      name: 'sandboxes',
      handles: ['sandbox-orchestrator.sandbox.created'],
      apply: async (_tx, events: readonly EventEnvelope[], version) => {
        for (const e of events) {
          const d = e.data as { sandboxId: string; sessionId: string; template: string; instance: string; limits: SandboxRow['limits'] };
          rows.set(d.sandboxId, { tenantId: e.tenantId, sandboxId: d.sandboxId, sessionId: d.sessionId, template: d.template, instance: d.instance, limits: d.limits, status: 'ready', version, createdAt: '', updatedAt: '', lastActivityAt: '' });
        }
      },
    },
  };
}

const outcome: ExecResult = { exitCode: 0, signal: null, reason: 'exited', stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false, usage: { cpuSeconds: 0, memoryPeakBytes: 0, wallSeconds: 0 } } as unknown as ExecResult;

describe('SandboxesService: the execution token for the egress proxy', () => {
  let tokens: ExecutionTokens;
  let seenDuringRun: Array<string | undefined>;
  let runtimeExec: SandboxRuntime['exec'];
  let decide: (request: AuthorizeRequest) => AuthorizeDecision;
  let service: SandboxesService;
  let sandboxId: string;

  beforeEach(async () => {
    tokens = new ExecutionTokens();
    seenDuringRun = [];
    decide = () => ({ decision: 'allow', rule: 'test', reason: 'ok' });
    runtimeExec = (id) => {
      seenDuringRun.push(tokens.tokenFor(id));
      return { result: Promise.resolve(outcome), kill: () => undefined };
    };
    const runtime = { check: async () => undefined, create: async () => undefined, exec: (...a: Parameters<SandboxRuntime['exec']>) => runtimeExec(...a), stop: async () => undefined, remove: async () => undefined, reconcile: async () => ({}) } as unknown as SandboxRuntime;
    service = new SandboxesService({
      store: new InMemoryEventStore(),
      repo: memoryRepository(),
      sessions: { session: async () => session },
      policy: () => ({ authorize: async (r) => decide(r) }),
      runtime,
      executionTokens: tokens,
      settings: { outputCapBytes: 1024, idleStopMs: 60_000, instance: 'unit' },
      eventContext: systemEventContext('sandbox-orchestrator'),
    });
    sandboxId = (await service.create(bot, 's1', 'small')).id;
  });

  it('holds the token while the program runs and releases it when it ends', async () => {
    await service.exec(bot, sandboxId, { command: ['/bin/true'] });
    expect(seenDuringRun).toEqual(['the.agent.token']);
    expect(tokens.size()).toBe(0);
  });

  it('releases it when the run fails or the runtime throws', async () => {
    runtimeExec = (id) => {
      seenDuringRun.push(tokens.tokenFor(id));
      return { result: Promise.reject(new Error('runtime lost it')), kill: () => undefined };
    };
    await expect(service.exec(bot, sandboxId, { command: ['/bin/true'] })).rejects.toThrow('runtime lost it');
    expect(seenDuringRun).toEqual(['the.agent.token']);
    expect(tokens.size()).toBe(0);
    runtimeExec = () => {
      throw new Error('could not start');
    };
    await expect(service.exec(bot, sandboxId, { command: ['/bin/true'] })).rejects.toThrow('could not start');
    expect(tokens.size()).toBe(0);
  });

  it('holds nothing when the policy refuses the execution', async () => {
    decide = (r) => (r.action === 'invoke' ? { decision: 'deny', rule: 'agent-tool-allowlist', reason: 'no' } : { decision: 'allow', rule: 'test', reason: 'ok' });
    await expect(service.exec(bot, sandboxId, { command: ['/bin/true'] })).rejects.toThrow(/agent-tool-allowlist/);
    expect(seenDuringRun).toEqual([]);
    expect(tokens.size()).toBe(0);
  });
});
