import { PalisadeError, SYSTEM_TENANT, type Principal } from '@palisade/contracts';
import { READ_ALL_TENANTS, READ_OWN_TENANT } from '../query/access';

/** Managing SIEM feeds: scope audit:admin; a tenant's admin its own tenant's feeds, a platform principal (tenant `system`) every tenant's. */
export const FEEDS_SCOPE = 'audit:admin';

/** The tenant whose feeds the principal manages; undefined: every tenant (platform). */
export function feedsTenantOf(principal: Principal): string | undefined {
  if (!(principal.scopes ?? []).includes(FEEDS_SCOPE)) throw new PalisadeError('forbidden', `managing SIEM feeds needs scope ${FEEDS_SCOPE}`);
  return principal.tenantId === SYSTEM_TENANT ? undefined : principal.tenantId;
}

/** The tenant a new feed is for: the caller's own, or the one a platform principal names. */
export function newFeedTenant(principal: Principal, requested: string | undefined): string {
  const own = feedsTenantOf(principal);
  if (own === undefined) {
    if (requested === undefined) throw new PalisadeError('validation', 'body tenantId: a platform principal names the tenant of the feed');
    return requested;
  }
  if (requested !== undefined && requested !== own) throw new PalisadeError('forbidden', "a tenant's admin creates feeds for its own tenant only");
  return own;
}

/**
 * A feed that starts from the beginning delivers the tenant's whole retained log: that is
 * reading it, so it needs the read scope for that tenant as well (audit:read for one's own
 * tenant, audit:read:all for any), not only audit:admin. `start: "end"` needs audit:admin only.
 */
export function requireBacklogRead(principal: Principal, feedTenant: string, start: 'beginning' | 'end'): void {
  if (start === 'end') return;
  const scopes = principal.scopes ?? [];
  if (scopes.includes(READ_ALL_TENANTS)) return;
  if (scopes.includes(READ_OWN_TENANT) && principal.tenantId === feedTenant) return;
  throw new PalisadeError('forbidden', `a feed that starts from the beginning reads the tenant's log: it needs scope ${READ_OWN_TENANT} (or ${READ_ALL_TENANTS}) as well as ${FEEDS_SCOPE}; or start at "end"`);
}
