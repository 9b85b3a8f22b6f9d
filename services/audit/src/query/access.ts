import { PalisadeError, SYSTEM_TENANT, type Principal } from '@palisade/contracts';

/**
 * Who may read the audit log, until the policy service answers it: token scopes.
 * `audit:read` reads the principal's own tenant; `audit:read:all` (a platform auditor)
 * reads every tenant. Anything else is refused.
 */
export const READ_OWN_TENANT = 'audit:read';
export const READ_ALL_TENANTS = 'audit:read:all';

export interface ReadAccess {
  /** undefined: every tenant. */
  tenantId: string | undefined;
  /** true: the caller asked for another tenant, whose records do not exist for it (an empty answer). */
  nothing?: true;
}

export function readAccessOf(principal: Principal, requestedTenant?: string): ReadAccess {
  const scopes = principal.scopes ?? [];
  if (scopes.includes(READ_ALL_TENANTS)) return { tenantId: requestedTenant };
  if (scopes.includes(READ_OWN_TENANT)) {
    // Another tenant's records do not exist for this caller.
    if (requestedTenant !== undefined && requestedTenant !== principal.tenantId) return { tenantId: principal.tenantId, nothing: true };
    return { tenantId: principal.tenantId };
  }
  throw new PalisadeError('forbidden', `reading the audit log needs scope ${READ_OWN_TENANT} or ${READ_ALL_TENANTS}`);
}

/** Platform-wide actions (key rotation, erasure, verification of whole partitions). */
export function requirePlatformScope(principal: Principal, scope: string): void {
  const scopes = principal.scopes ?? [];
  if (!scopes.includes(scope)) throw new PalisadeError('forbidden', `this needs scope ${scope}`);
  if (principal.tenantId !== SYSTEM_TENANT && !scopes.includes(READ_ALL_TENANTS)) {
    throw new PalisadeError('forbidden', `this needs scope ${scope} as a platform principal`);
  }
}
