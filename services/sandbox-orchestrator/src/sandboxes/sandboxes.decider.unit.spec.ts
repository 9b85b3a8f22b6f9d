import { DeciderSpecification } from '@palisade/eventsourcing';
import { sandboxDecider, sandboxStateOf, type SandboxCommand } from './sandboxes.decider';
import type { SandboxEvent } from './sandboxes.events';
import { SANDBOX_TEMPLATES } from './sandboxes.templates';

const spec = DeciderSpecification.for(sandboxDecider);
const at = { tenantId: 'acme', actor: { type: 'agent' as const, id: 'release-bot' }, now: new Date('2026-12-03T10:00:00.000Z') };
const cmd = (c: Omit<SandboxCommand, 'metadata'>) => ({ ...c, metadata: at }) as SandboxCommand;
const ids = { sandboxId: 'sb-1', sessionId: 's-1' };
const limits = SANDBOX_TEMPLATES.small;
const usage = { cpuSeconds: 0.5, memoryGbSeconds: 0.01, wallSeconds: 1.2 };
const expiresAt = '2026-12-03T12:00:00.000Z';
const created: SandboxEvent = { type: 'sandbox-orchestrator.sandbox.created', data: { ...ids, template: 'small', limits, instance: 'local', expiresAt } };
const start = { executionId: 'e-1', kind: 'command' as const, program: 'python3', timeoutMs: 10_000 };
const started: SandboxEvent = { type: 'sandbox-orchestrator.sandbox.exec_started', data: { ...ids, ...start } };
const metering = { agentId: 'release-bot', actualMicros: '1234', model: 'small', usage: [{ kind: 'cpu_ms', quantity: 500 }, { kind: 'memory_mb_ms', quantity: 12289 }, { kind: 'wall_ms', quantity: 1200 }] };
const end = { executionId: 'e-1', exitCode: 0, signal: null, stdoutBytes: 3, stderrBytes: 0, usage, metering };
const finished = (reason: 'exited' | 'timeout' | 'oom' | 'killed' | 'lost'): SandboxEvent => ({
  type: 'sandbox-orchestrator.sandbox.exec_finished',
  data: { ...ids, executionId: 'e-1', reason, exitCode: 0, signal: null, stdoutBytes: 3, stderrBytes: 0, usage },
});
// billing's contract: the execution id is the hold's request id
const metered: SandboxEvent = { type: 'sandbox-orchestrator.usage.recorded', data: { ...ids, executionId: 'e-1', requestId: 'e-1', ...metering } };
const stopped: SandboxEvent = { type: 'sandbox-orchestrator.sandbox.stopped', data: { ...ids, reason: 'requested' } };
const deleted: SandboxEvent = { type: 'sandbox-orchestrator.sandbox.deleted', data: ids };

describe('sandboxes decider', () => {
  it('creates a sandbox once, with the limits of its template', () => {
    spec([]).when(cmd({ type: 'create', data: { ...ids, template: 'small', limits, instance: 'local', expiresAt } })).then([created]);
    spec([created]).when(cmd({ type: 'create', data: { ...ids, template: 'small', limits, instance: 'local', expiresAt } })).thenThrows('conflict', 'already exists');
  });

  it('starts one execution at a time, within the sandbox’s timeout', () => {
    spec([created]).when(cmd({ type: 'start', data: start })).then([started]);
    spec([created, started]).when(cmd({ type: 'start', data: { ...start, executionId: 'e-2' } })).thenThrows('conflict', 'one at a time');
    spec([created]).when(cmd({ type: 'start', data: { ...start, timeoutMs: limits.timeoutMs + 1 } })).thenThrows('validation', 'timeoutMs');
    spec([created, started, finished('exited'), metered]).when(cmd({ type: 'start', data: { ...start, executionId: 'e-2' } })).then([
      { type: 'sandbox-orchestrator.sandbox.exec_started', data: { ...ids, ...start, executionId: 'e-2' } },
    ]);
  });

  it('records an execution’s end once with its usage for billing, every reason but lost', () => {
    for (const reason of ['exited', 'timeout', 'oom', 'killed'] as const) {
      spec([created, started]).when(cmd({ type: 'finish', data: { ...end, reason } })).then([finished(reason), metered]);
    }
    spec([created, started]).when(cmd({ type: 'finish', data: { ...end, reason: 'lost' } })).then([finished('lost')]);
    const { metering: _none, ...unmetered } = end;
    void _none;
    spec([created, started]).when(cmd({ type: 'finish', data: { ...unmetered, reason: 'exited' } })).then([finished('exited')]); // nothing priced: no usage event
    spec([created, started, finished('exited'), metered]).when(cmd({ type: 'finish', data: { ...end, reason: 'exited' } })).then([]); // never billed twice
  });

  it('records the end of an execution that ran when the sandbox was stopped or deleted', () => {
    spec([created, started, stopped]).when(cmd({ type: 'finish', data: { ...end, reason: 'killed' } })).then([finished('killed'), metered]);
    spec([created, started, deleted]).when(cmd({ type: 'finish', data: { ...end, reason: 'killed' } })).then([finished('killed'), metered]);
  });

  it('runs nothing past the sandbox’s lifetime limit; stops it once for that reason', () => {
    const late = { ...at, now: new Date(expiresAt) };
    spec([created]).when({ type: 'start', data: start, metadata: late }).thenThrows('illegal_state', 'lifetime');
    spec([created]).when(cmd({ type: 'stop', data: { reason: 'lifetime' } })).then([{ type: 'sandbox-orchestrator.sandbox.stopped', data: { ...ids, reason: 'lifetime' } }]);
  });

  it('records a file transfer by path and size (never content) while the sandbox is ready, running or not', () => {
    const upload = { direction: 'upload' as const, path: '/workspace/a.txt', bytes: 3, via: 'caller' as const };
    spec([created]).when(cmd({ type: 'transfer', data: upload })).then([{ type: 'sandbox-orchestrator.sandbox.file_uploaded', data: { ...ids, path: '/workspace/a.txt', bytes: 3, via: 'caller' } }]);
    spec([created, started]).when(cmd({ type: 'transfer', data: { ...upload, direction: 'download', via: 'sandbox-token' } })).then([
      { type: 'sandbox-orchestrator.sandbox.file_downloaded', data: { ...ids, path: '/workspace/a.txt', bytes: 3, via: 'sandbox-token' } },
    ]);
    spec([created, stopped]).when(cmd({ type: 'transfer', data: upload })).thenThrows('illegal_state', 'sandbox is stopped');
    spec([created, deleted]).when(cmd({ type: 'transfer', data: upload })).thenThrows('not_found');
    spec([created]).when({ type: 'transfer', data: upload, metadata: { ...at, now: new Date(expiresAt) } }).thenThrows('illegal_state', 'lifetime');
  });

  it('records a refusal of the policy, naming the rule', () => {
    spec([created]).when(cmd({ type: 'refuse', data: { action: 'invoke', rule: 'tool-not-allowlisted' } })).then([
      { type: 'sandbox-orchestrator.sandbox.exec_refused', data: { ...ids, action: 'invoke', rule: 'tool-not-allowlisted' } },
    ]);
  });

  it('stops once; a stopped sandbox runs nothing more; a deleted one is gone', () => {
    spec([created]).when(cmd({ type: 'stop', data: { reason: 'requested' } })).then([stopped]);
    spec([created]).when(cmd({ type: 'stop', data: { reason: 'idle' } })).then([{ type: 'sandbox-orchestrator.sandbox.stopped', data: { ...ids, reason: 'idle' } }]);
    spec([created, stopped]).when(cmd({ type: 'stop', data: { reason: 'idle' } })).then([]);
    spec([created, stopped]).when(cmd({ type: 'start', data: start })).thenThrows('illegal_state', 'sandbox is stopped');
    spec([created, stopped]).when(cmd({ type: 'delete', data: {} })).then([deleted]);
    for (const c of [cmd({ type: 'start', data: start }), cmd({ type: 'stop', data: { reason: 'requested' } }), cmd({ type: 'delete', data: {} })]) {
      spec([created, deleted]).when(c).thenThrows('not_found', 'sandbox not found');
    }
  });

  it('knows no sandbox that was never created', () => {
    spec([]).when(cmd({ type: 'start', data: start })).thenThrows('not_found', 'sandbox not found');
    spec([]).when(cmd({ type: 'finish', data: { ...end, reason: 'exited' } })).thenThrows('not_found');
  });
});

describe('the state from the read-model row', () => {
  const fold = (events: SandboxEvent[]) => events.reduce((s, e) => sandboxDecider.evolve(s, e), sandboxDecider.initialState());
  const row = { ...ids, limits, expiresAt, status: 'ready' as const };

  it('is the state the stream folds to: created, running, finished, stopped, deleted', () => {
    expect(sandboxStateOf(row)).toEqual(fold([created]));
    expect(sandboxStateOf({ ...row, runningExecution: 'e-1' })).toEqual(fold([created, started]));
    expect(sandboxStateOf(row)).toEqual(fold([created, started, finished('exited'), metered]));
    expect(sandboxStateOf({ ...row, status: 'stopped' })).toEqual(fold([created, stopped]));
    expect(sandboxStateOf({ ...row, status: 'deleted' })).toEqual(fold([created, stopped, deleted]));
    const { expiresAt: _none, ...older } = row; // streams from before the lifetime limit
    void _none;
    expect(sandboxStateOf(older)).toEqual(fold([{ ...created, data: { ...ids, template: 'small', limits, instance: 'local' } } as SandboxEvent]));
  });
});
