import { PalisadeError, type Actor } from '@palisade/contracts';
import type { TenantsService } from './tenants.service';
import type { UsersService } from '../users/users.service';
import { passwordProblems } from './tenants.decider';
import { DEFAULT_PASSWORD_POLICY } from './tenants.events';

export interface TenantProvisioningInput {
  tenantId: string;
  name: string;
  admin: { username: string; email?: string; password: string };
}

/**
 * A tenant and its first administrator: `auth.tenant.created` on `tenant-<id>`, then
 * `auth.user.registered` on the administrator's stream. Used by the bootstrap (first
 * tenant) and by platform operators (`POST /v1/tenants`).
 */
export class TenantProvisioning {
  constructor(
    private readonly tenants: Pick<TenantsService, 'create'>,
    private readonly users: Pick<UsersService, 'register'>,
  ) {}

  async provision(actor: Actor, input: TenantProvisioningInput, roles: string[]) {
    // A new tenant starts with the default policy: a password it would refuse must not leave
    // a tenant behind without its administrator.
    const problems = passwordProblems(input.admin.password, DEFAULT_PASSWORD_POLICY);
    if (problems.length > 0) throw new PalisadeError('validation', `admin.password: ${problems.join('; ')}`);
    await this.tenants.create(actor, { tenantId: input.tenantId, name: input.name });
    const { userId } = await this.users.register(input.tenantId, actor, { ...input.admin, roles });
    return { tenantId: input.tenantId, adminUserId: userId };
  }
}
