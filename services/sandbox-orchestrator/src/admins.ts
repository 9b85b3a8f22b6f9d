import { PalisadeError, type Principal } from '@palisade/contracts';

/** The scope a tenant's policy administrators hold (issued by auth to the tenant's admins). */
export const TENANT_ADMIN_SCOPE = 'policy:admin';

/**
 * A person holding the tenant's administration scope; never an agent (whatever its
 * scopes) or a service. `what` names what is administered, in the refusal.
 */
export function requireTenantAdmin(principal: Principal, what: string): void {
  if (principal.type === 'agent') throw new PalisadeError('forbidden', `an agent administers no ${what}`);
  if (principal.type !== 'user') throw new PalisadeError('forbidden', `only a person administers ${what}`);
  if (!principal.scopes?.includes(TENANT_ADMIN_SCOPE)) throw new PalisadeError('forbidden', `${what} are administered by the tenant's policy administrators (scope ${TENANT_ADMIN_SCOPE})`);
}
