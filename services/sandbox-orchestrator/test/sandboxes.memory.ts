import { systemEventContext, type EventEnvelope, type Principal } from '@palisade/contracts';
import { InMemoryEventStore, type EventStore } from '@palisade/eventsourcing';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import type { ExecRequest, ExecResult, SandboxRuntime } from '../src/runtime/runtime.port';
import type { SandboxEvent } from '../src/sandboxes/sandboxes.events';
import type { ExecutionRow, SandboxesRepository, SandboxRow } from '../src/sandboxes/sandboxes.repository';
import { SandboxesService, type SandboxesServiceDependencies } from '../src/sandboxes/sandboxes.service';
import type { SessionRow } from '../src/sessions/sessions.repository';
import type { Caller } from '../src/sessions/sessions.service';

/** Unit tests of SandboxesService: an in-memory event store and read model, a policy stand-in, a runtime stand-in. */
export const session: SessionRow = { tenantId: 'acme', sessionId: 's1', owner: 'alice', collaborators: [], viewers: [], agents: ['fetch-bot'], status: 'active', version: 1, createdAt: '', updatedAt: '' };
export const bot: Caller = {
  principal: { type: 'agent', id: 'fetch-bot', tenantId: 'acme', actingFor: 'alice', department: 'platform' } as Principal,
  agentToken: 'the.agent.token',
  token: 'the.agent.token',
};
export const alice: Caller = { principal: { type: 'user', id: 'alice', tenantId: 'acme' } as Principal, token: 'alice.token' };

export type MemoryRepository = Pick<
  SandboxesRepository,
  'sandbox' | 'sandboxesOf' | 'liveSandboxes' | 'idleSince' | 'expiredBy' | 'readyCount' | 'readyCountLocked' | 'lockedSandbox' | 'cpuSecondsSince' | 'claimCpu' | 'releaseCpu' | 'releaseCpuOf' | 'holdBoot' | 'liveElsewhere' | 'execution' | 'storeOutput' | 'projection' | 'commit'
> & { rows: Map<string, SandboxRow>; events: SandboxEvent[]; cpu: { seconds: number }; grants: Map<string, { tenantId: string; instance: string; boot?: string; cpuSeconds: number }>; liveBoots: Set<string> };

/** `store`: where `commit` appends (with the rows, as the PostgreSQL repository does in one statement). */
export function memoryRepository(store: EventStore = new InMemoryEventStore()): MemoryRepository {
  const rows = new Map<string, SandboxRow>();
  const events: SandboxEvent[] = [];
  const cpu = { seconds: 0 };
  const grants = new Map<string, { tenantId: string; instance: string; boot?: string; cpuSeconds: number }>();
  // the processes alive (as the advisory locks on their boots)
  const liveBoots = new Set<string>();
  const ready = (tenantId: string) => [...rows.values()].filter((r) => r.tenantId === tenantId && r.status === 'ready').length;
  const repository: MemoryRepository = {
    rows,
    events,
    cpu,
    grants,
    liveBoots,
    sandbox: async (tenantId, id) => (rows.get(id)?.tenantId === tenantId ? rows.get(id) : undefined),
    sandboxesOf: async () => [...rows.values()],
    liveSandboxes: async () => [...rows.values()].filter((r) => r.status === 'ready' || r.runningExecution),
    idleSince: async () => [],
    expiredBy: async (_instance, at) => [...rows.values()].filter((r) => r.status === 'ready' && r.expiresAt && Date.parse(r.expiresAt) <= at.getTime()),
    readyCount: async (tenantId) => ready(tenantId),
    readyCountLocked: async (_tx, tenantId) => ready(tenantId),
    lockedSandbox: async (_tx, tenantId, id) => (rows.get(id)?.tenantId === tenantId ? { ...rows.get(id)! } : undefined),
    cpuSecondsSince: async () => cpu.seconds,
    // as the SQL function: read and grant in one step (one tenant here, whatever the instance)
    claimCpu: async (c) => {
      const held = [...grants.values()].filter((g) => g.tenantId === c.tenantId).reduce((sum, g) => sum + g.cpuSeconds, 0);
      const left = c.quota - cpu.seconds - held;
      if (left <= 0) return { used: cpu.seconds, held };
      const granted = Math.min(left, c.want);
      grants.set(c.executionId, { tenantId: c.tenantId, instance: c.instance, boot: c.boot, cpuSeconds: granted });
      return { granted, used: cpu.seconds, held };
    },
    releaseCpu: async (_tenantId, executionId) => void grants.delete(executionId),
    holdBoot: async (boot) => {
      liveBoots.add(boot);
      return async () => void liveBoots.delete(boot);
    },
    liveElsewhere: async (instance, boot) => new Set([...grants].filter(([, g]) => g.instance === instance && g.boot !== boot && g.boot && liveBoots.has(g.boot)).map(([id]) => id)),
    releaseCpuOf: async (instance, boot) => {
      for (const [id, g] of grants) if (g.instance === instance && g.boot !== boot && !(g.boot && liveBoots.has(g.boot))) grants.delete(id);
    },
    execution: async (_tenant, sandboxId, executionId) =>
      ({ sandboxId, executionId, program: 'sh', status: 'finished', exitCode: 0, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), stdoutTruncated: false, stderrTruncated: false, startedAt: '' }) as ExecutionRow,
    storeOutput: async () => undefined,
    commit: (envelopes, version) =>
      store.inTransaction(async (tx) => {
        const { nextVersion } = await store.appendToStream(tx, `sandbox-${(envelopes[0].data as { sandboxId: string }).sandboxId}`, envelopes, version);
        await repository.projection.apply(tx, envelopes, nextVersion);
      }),
    projection: {
      name: 'sandboxes',
      handles: [
        'sandbox-orchestrator.sandbox.created',
        'sandbox-orchestrator.sandbox.exec_started',
        'sandbox-orchestrator.sandbox.exec_finished',
        'sandbox-orchestrator.usage.recorded',
        'sandbox-orchestrator.sandbox.stopped',
        'sandbox-orchestrator.sandbox.deleted',
        'sandbox-orchestrator.sandbox.exec_refused',
      ],
      apply: async (_tx, envelopes: readonly EventEnvelope[], version) => {
        for (const e of envelopes) {
          const event = { type: e.type, data: e.data } as SandboxEvent;
          events.push(event);
          const row = rows.get(event.data.sandboxId);
          switch (event.type) {
            case 'sandbox-orchestrator.sandbox.created': {
              const d = event.data;
              rows.set(d.sandboxId, { tenantId: e.tenantId, sandboxId: d.sandboxId, sessionId: d.sessionId, template: d.template, instance: d.instance, limits: d.limits, status: 'ready', version, createdAt: '', updatedAt: '', lastActivityAt: '', ...(d.expiresAt ? { expiresAt: d.expiresAt } : {}) });
              break;
            }
            case 'sandbox-orchestrator.sandbox.exec_started':
              if (row) row.runningExecution = event.data.executionId;
              break;
            case 'sandbox-orchestrator.sandbox.exec_finished':
              if (row) delete row.runningExecution;
              cpu.seconds += event.data.usage.cpuSeconds;
              grants.delete(event.data.executionId);
              break;
            case 'sandbox-orchestrator.sandbox.stopped':
              if (row) row.status = 'stopped';
              break;
            case 'sandbox-orchestrator.sandbox.deleted':
              if (row) row.status = 'deleted';
              break;
            default:
              break;
          }
          const updated = rows.get(event.data.sandboxId);
          if (updated) updated.version = version;
        }
      },
    },
  };
  return repository;
}

export const outcome = (usage = { cpuSeconds: 0.25, memoryGbSeconds: 0.001, wallSeconds: 0.5 }): ExecResult => ({
  exitCode: 0,
  signal: null,
  reason: 'exited',
  stdout: Buffer.from('ok\n'),
  stderr: Buffer.alloc(0),
  stdoutTruncated: false,
  stderrTruncated: false,
  usage: { ...usage, peakMemoryBytes: 0 },
});

/** A runtime's exec as the port has it: the program (`run`) only once `startWhen` resolved, never if it rejects. */
export function runtimeOf(run: (sandboxId: string, executionId: string, request: ExecRequest) => Promise<ExecResult>): SandboxRuntime['exec'] {
  return (sandboxId, executionId, request) => ({ result: Promise.resolve(request.startWhen).then(() => run(sandboxId, executionId, request)), kill: () => undefined });
}

/** A service on the stand-ins; `runtimeExec` and `decide` may be replaced by a test. */
export function serviceHarness(overrides: Partial<SandboxesServiceDependencies> = {}) {
  const store = overrides.store ?? new InMemoryEventStore();
  const repo = memoryRepository(store);
  const h = {
    repo,
    decide: ((): AuthorizeDecision => ({ decision: 'allow', rule: 'test', reason: 'ok' })) as (request: AuthorizeRequest) => AuthorizeDecision,
    asked: [] as AuthorizeRequest[],
    runtimeExec: runtimeOf(async () => outcome()),
    removed: [] as string[],
    service: undefined as unknown as SandboxesService,
  };
  const runtime = {
    check: async () => undefined,
    create: async () => undefined,
    exec: (...a: Parameters<SandboxRuntime['exec']>) => h.runtimeExec(...a),
    stop: async () => undefined,
    remove: async (id: string) => void h.removed.push(id),
    reconcile: async () => ({ containers: [], workspaces: [] }),
  } as unknown as SandboxRuntime;
  h.service = new SandboxesService({
    store,
    repo,
    sessions: { session: async () => session },
    policy: () => ({
      authorize: async (r) => {
        h.asked.push(r);
        return h.decide(r);
      },
    }),
    runtime,
    settings: { outputCapBytes: 1024, idleStopMs: 60_000, instance: 'unit', lifetimeMs: 3_600_000, quotas: { maxSandboxes: 5, cpuSeconds: 100, cpuWindowMs: 3_600_000 } },
    eventContext: systemEventContext('sandbox-orchestrator'),
    ...overrides,
  });
  return h;
}
