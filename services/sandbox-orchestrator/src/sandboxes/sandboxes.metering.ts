import type { Principal } from '@palisade/contracts';
import type { SandboxLimits } from '../runtime/runtime.port';
import type { ExecutionUsage, MeteredQuantity } from './sandboxes.events';

/** The provider name of sandbox usage in billing's price tables; the model is the sandbox's template. */
export const SANDBOX_PRICE_PROVIDER = 'sandbox';

/**
 * An execution's usage in billing's price-table kinds, whole units (billing prices integers
 * exactly): CPU milliseconds, memory MB·milliseconds, wall milliseconds, each rounded up.
 */
export function meteredQuantities(usage: ExecutionUsage): MeteredQuantity[] {
  const up = (n: number) => Math.max(0, Math.ceil(Math.round(n * 1e6) / 1e3));
  return [
    { kind: 'cpu_ms', quantity: up(usage.cpuSeconds) },
    { kind: 'memory_mb_ms', quantity: up(usage.memoryGbSeconds * 1024) },
    { kind: 'wall_ms', quantity: up(usage.wallSeconds) },
  ];
}

/** The most an execution can use within its limits and timeout (what is held before it starts). */
export function worstCaseUsage(limits: Pick<SandboxLimits, 'cpuMillis' | 'memoryMb'>, timeoutMs: number): ExecutionUsage {
  const wallSeconds = timeoutMs / 1000;
  return { cpuSeconds: (limits.cpuMillis / 1000) * wallSeconds, memoryGbSeconds: (limits.memoryMb / 1024) * wallSeconds, wallSeconds };
}

/** Whom billing charges (its levels): the agent (a person calling directly as `user:<id>`), the user it acts for, its team. */
export function billedSubjectOf(principal: Principal): { agentId: string; userId?: string; teamId?: string } {
  const teamId = principal.department ?? principal.teams?.[0];
  const who = principal.type === 'agent' ? { agentId: principal.id, ...(principal.actingFor ? { userId: principal.actingFor } : {}) } : { agentId: `user:${principal.id}`, userId: principal.id };
  return { ...who, ...(teamId ? { teamId } : {}) };
}
