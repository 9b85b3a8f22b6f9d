import type { DomainEvent } from '@palisade/eventsourcing';

/** A tenant's own sandbox quotas, each at most the platform's (the environment's), which apply where none is set. */
export type TenantQuotas = {
  /** Sandboxes ready at once. */
  maxSandboxes: number;
  /** CPU-seconds of the tenant's executions within the platform's window (SANDBOX_TENANT_CPU_WINDOW_HOURS). */
  cpuSeconds: number;
};

/**
 * A tenant's sandbox quotas (stream `tenant_quotas-<tenant>`): set whole, or removed (the
 * platform's apply again). Actor: the tenant's administrator.
 */
export type TenantQuotasEvent =
  | DomainEvent<'sandbox-orchestrator.tenant_quotas.set', TenantQuotas>
  | DomainEvent<'sandbox-orchestrator.tenant_quotas.removed', Record<string, never>>;

export const TENANT_QUOTAS_EVENT_TYPES: readonly TenantQuotasEvent['type'][] = ['sandbox-orchestrator.tenant_quotas.set', 'sandbox-orchestrator.tenant_quotas.removed'];
