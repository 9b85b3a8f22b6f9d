import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { SandboxLimits } from '../runtime/runtime.port';
import type { ExecutionReason, ExecutionUsage, FileTransfer, MeteredQuantity, SandboxEvent, StopReason } from './sandboxes.events';

/** What billing settles an execution with (absent for `lost`: nothing was measured). */
export interface ExecutionMetering {
  agentId: string;
  actualMicros: string;
  model: string;
  usage: MeteredQuantity[];
}

export interface SandboxState {
  status: 'none' | 'ready' | 'stopped' | 'deleted';
  sandboxId?: string;
  sessionId?: string;
  limits?: SandboxLimits;
  /** The lifetime limit: nothing runs from then on (absent in streams older than the limit). */
  expiresAt?: string;
  /** The execution running now (one at a time per sandbox). */
  running?: string;
}

/**
 * The state of a sandbox from its read-model row (pure): the row holds every field the
 * decider keeps, at the stream's version, so a command need not fold the whole stream.
 */
export function sandboxStateOf(row: { sandboxId: string; sessionId: string; limits: SandboxLimits; status: 'ready' | 'stopped' | 'deleted'; runningExecution?: string; expiresAt?: string }): SandboxState {
  return {
    status: row.status,
    sandboxId: row.sandboxId,
    sessionId: row.sessionId,
    limits: row.limits,
    ...(row.expiresAt ? { expiresAt: row.expiresAt } : {}),
    ...(row.runningExecution ? { running: row.runningExecution } : {}),
  };
}

export type SandboxCommand =
  | Command<'create', { sandboxId: string; sessionId: string; template: string; limits: SandboxLimits; instance: string; expiresAt: string }>
  | Command<'start', { executionId: string; kind: 'command' | 'code'; program: string; timeoutMs: number }>
  | Command<'finish', { executionId: string; reason: ExecutionReason; exitCode: number | null; signal: string | null; stdoutBytes: number; stderrBytes: number; usage: ExecutionUsage; metering?: ExecutionMetering }>
  | Command<'refuse', { action: string; rule: string }>
  | Command<'transfer', { direction: 'upload' | 'download' } & Omit<FileTransfer, 'sandboxId' | 'sessionId'>>
  | Command<'stop', { reason: StopReason }>
  | Command<'delete', Record<string, never>>;

const notFound = () => new PalisadeError('not_found', 'sandbox not found');

/**
 * The sandbox's own rules (who may ask is the policy service's decision, asked before):
 * created once; one execution at a time, none once stopped or deleted; an execution's
 * end is recorded once, whatever happened to the sandbox meanwhile (so its usage is
 * billed exactly once: one `usage.recorded` per execution id, billing's request id); usage
 * is recorded for every end but `lost` (nothing measured, nothing billed).
 */
export const sandboxDecider: Decider<SandboxState, SandboxCommand, SandboxEvent> = {
  initialState: () => ({ status: 'none' }),

  decide(command, state) {
    if (command.type === 'create') {
      if (state.status !== 'none') throw new PalisadeError('conflict', 'sandbox already exists');
      return [{ type: 'sandbox-orchestrator.sandbox.created', data: { ...command.data } }];
    }
    if (state.status === 'none') throw notFound();
    const ids = { sandboxId: state.sandboxId!, sessionId: state.sessionId! };
    switch (command.type) {
      case 'finish': {
        const d = command.data;
        if (state.running !== d.executionId) return []; // already recorded
        const finished: SandboxEvent = {
          type: 'sandbox-orchestrator.sandbox.exec_finished',
          data: { ...ids, executionId: d.executionId, reason: d.reason, exitCode: d.exitCode, signal: d.signal, stdoutBytes: d.stdoutBytes, stderrBytes: d.stderrBytes, usage: d.usage },
        };
        if (d.reason === 'lost' || !d.metering) return [finished];
        return [finished, { type: 'sandbox-orchestrator.usage.recorded', data: { ...ids, executionId: d.executionId, requestId: d.executionId, ...d.metering } }];
      }
      case 'refuse':
        if (state.status === 'deleted') throw notFound();
        return [{ type: 'sandbox-orchestrator.sandbox.exec_refused', data: { ...ids, ...command.data } }];
      case 'start':
        if (state.status === 'deleted') throw notFound();
        if (state.status === 'stopped') throw new PalisadeError('illegal_state', 'sandbox is stopped');
        if (state.expiresAt && command.metadata.now.getTime() >= Date.parse(state.expiresAt)) throw new PalisadeError('illegal_state', 'sandbox reached its lifetime limit');
        if (state.running) throw new PalisadeError('conflict', 'an execution is running in this sandbox (one at a time)');
        if (command.data.timeoutMs > state.limits!.timeoutMs) throw new PalisadeError('validation', `timeoutMs: at most ${state.limits!.timeoutMs} in this sandbox`);
        return [{ type: 'sandbox-orchestrator.sandbox.exec_started', data: { ...ids, ...command.data } }];
      case 'transfer': {
        if (state.status === 'deleted') throw notFound();
        if (state.status === 'stopped') throw new PalisadeError('illegal_state', 'sandbox is stopped');
        if (state.expiresAt && command.metadata.now.getTime() >= Date.parse(state.expiresAt)) throw new PalisadeError('illegal_state', 'sandbox reached its lifetime limit');
        const { direction, ...file } = command.data;
        return [{ type: direction === 'upload' ? 'sandbox-orchestrator.sandbox.file_uploaded' : 'sandbox-orchestrator.sandbox.file_downloaded', data: { ...ids, ...file } }];
      }
      case 'stop':
        if (state.status === 'deleted') throw notFound();
        if (state.status === 'stopped') return [];
        return [{ type: 'sandbox-orchestrator.sandbox.stopped', data: { ...ids, reason: command.data.reason } }];
      case 'delete':
        if (state.status === 'deleted') throw notFound();
        return [{ type: 'sandbox-orchestrator.sandbox.deleted', data: ids }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'sandbox-orchestrator.sandbox.created':
        return { status: 'ready', sandboxId: event.data.sandboxId, sessionId: event.data.sessionId, limits: event.data.limits, ...(event.data.expiresAt ? { expiresAt: event.data.expiresAt } : {}) };
      case 'sandbox-orchestrator.sandbox.exec_started':
        return { ...state, running: event.data.executionId };
      case 'sandbox-orchestrator.sandbox.exec_finished': {
        const { running: _done, ...rest } = state;
        void _done;
        return rest;
      }
      case 'sandbox-orchestrator.sandbox.stopped':
        return { ...state, status: 'stopped' };
      case 'sandbox-orchestrator.sandbox.deleted':
        return { ...state, status: 'deleted' };
      case 'sandbox-orchestrator.sandbox.usage_recorded':
      case 'sandbox-orchestrator.usage.recorded':
      case 'sandbox-orchestrator.sandbox.exec_refused':
      case 'sandbox-orchestrator.sandbox.file_uploaded':
      case 'sandbox-orchestrator.sandbox.file_downloaded':
        return state;
    }
  },
};
