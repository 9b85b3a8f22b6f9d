import type { DomainEvent } from '@palisade/eventsourcing';
import type { SandboxLimits } from '../runtime/runtime.port';

type Limits = { [K in keyof SandboxLimits]: SandboxLimits[K] };

/** How an execution ended: its own exit, the wall-clock timeout, the OOM killer, a kill (stop, delete), or lost (the orchestrator died while it ran). */
export type ExecutionReason = 'exited' | 'timeout' | 'oom' | 'killed' | 'quota' | 'lost';
export const EXECUTION_REASONS: readonly ExecutionReason[] = ['exited', 'timeout', 'oom', 'killed', 'quota', 'lost'];

/** Measured usage of one execution (seconds; what the caller sees). */
export type ExecutionUsage = {
  cpuSeconds: number;
  memoryGbSeconds: number;
  wallSeconds: number;
};

/** A quantity in billing's price-table kinds (`cpu_ms`, `memory_mb_ms`, `wall_ms`; whole units). */
export type MeteredQuantity = { kind: string; quantity: number };

/**
 * billing's metering contract (services/billing/src/metering/metering.dto.ts): settles the
 * hold `requestId` (= the execution id) with `actualMicros`, exactly once (billing meets
 * duplicates on the hold). `agentId` is billing's agent level (`user:<id>` for a person).
 */
export type UsageRecorded = {
  sandboxId: string;
  sessionId: string;
  executionId: string;
  requestId: string;
  agentId: string;
  actualMicros: string;
  /** The sandbox's template: the price table's model. */
  model: string;
  usage: MeteredQuantity[];
};

export type FileTransfer = { sandboxId: string; sessionId: string; path: string; bytes: number; via: 'caller' | 'sandbox-token' };

/** Why a sandbox stopped: asked, idle past the idle stop, or past its lifetime limit. */
export type StopReason = 'requested' | 'idle' | 'lifetime';

/**
 * A sandbox (stream `sandbox-<id>`, events of one tenant only), in a session. No event
 * carries what a program printed, its stdin, its code or its environment (they may hold
 * personal data or secrets the caller passed): only sizes, ids, the program's name and
 * the outcome.
 */
export type SandboxEvent =
  | DomainEvent<'sandbox-orchestrator.sandbox.created', { sandboxId: string; sessionId: string; template: string; limits: Limits; instance: string; expiresAt?: string }>
  | DomainEvent<'sandbox-orchestrator.sandbox.exec_started', { sandboxId: string; sessionId: string; executionId: string; kind: 'command' | 'code'; program: string; timeoutMs: number }>
  | DomainEvent<
      'sandbox-orchestrator.sandbox.exec_finished',
      { sandboxId: string; sessionId: string; executionId: string; reason: ExecutionReason; exitCode: number | null; signal: string | null; stdoutBytes: number; stderrBytes: number; usage: ExecutionUsage }
    >
  /** Emitted before billing's contract was followed (no request id, no cost); old streams hold it. Not emitted any more. */
  | DomainEvent<'sandbox-orchestrator.sandbox.usage_recorded', { sandboxId: string; sessionId: string; executionId: string } & ExecutionUsage>
  | DomainEvent<'sandbox-orchestrator.usage.recorded', UsageRecorded>
  | DomainEvent<'sandbox-orchestrator.sandbox.exec_refused', { sandboxId: string; sessionId: string; action: string; rule: string }>
  /** A file written into / read from the workspace: by path and size, never its content; `via` a sandbox-scoped token, or the caller (the actor). */
  | DomainEvent<'sandbox-orchestrator.sandbox.file_uploaded', FileTransfer>
  | DomainEvent<'sandbox-orchestrator.sandbox.file_downloaded', FileTransfer>
  | DomainEvent<'sandbox-orchestrator.sandbox.stopped', { sandboxId: string; sessionId: string; reason: StopReason }>
  | DomainEvent<'sandbox-orchestrator.sandbox.deleted', { sandboxId: string; sessionId: string }>;

export type SandboxEventType = SandboxEvent['type'];

export const SANDBOX_EVENT_TYPES: readonly SandboxEventType[] = [
  'sandbox-orchestrator.sandbox.created',
  'sandbox-orchestrator.sandbox.exec_started',
  'sandbox-orchestrator.sandbox.exec_finished',
  'sandbox-orchestrator.sandbox.usage_recorded',
  'sandbox-orchestrator.usage.recorded',
  'sandbox-orchestrator.sandbox.exec_refused',
  'sandbox-orchestrator.sandbox.file_uploaded',
  'sandbox-orchestrator.sandbox.file_downloaded',
  'sandbox-orchestrator.sandbox.stopped',
  'sandbox-orchestrator.sandbox.deleted',
];
