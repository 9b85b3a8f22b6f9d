import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PalisadeError } from '@palisade/contracts';
import { PLATFORM_ADMIN_ROLE } from '../sessions/token-issuer';
import type { TenantProvisioning } from '../tenants/tenant-provisioning';
import type { TenantsService } from '../tenants/tenants.service';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The first tenant and its administrator, created with a one-time bootstrap token read
 * from AUTH_BOOTSTRAP_TOKEN_FILE (scripts/start.js writes one for `npm start`). It works
 * only while no tenant exists; without the file it is off. That administrator is also the
 * platform operator (role platform-admin → scope platform:admin), who creates the other
 * tenants through `POST /v1/tenants`.
 */
export class BootstrapService {
  constructor(
    private readonly tokenFile: string | undefined,
    private readonly tenants: Pick<TenantsService, 'any'>,
    private readonly provisioning: Pick<TenantProvisioning, 'provision'>,
  ) {}

  async bootstrap(presented: string, input: { tenantId: string; tenantName: string; admin: { username: string; email?: string; password: string } }) {
    let expected: string;
    try {
      expected = this.tokenFile ? readFileSync(this.tokenFile, 'utf8').trim() : '';
    } catch {
      expected = '';
    }
    if (expected.length < 32 || !timingSafeEqual(digest(expected), digest(presented))) {
      throw new PalisadeError('unauthenticated', 'bootstrap token is missing or wrong');
    }
    if (await this.tenants.any()) throw new PalisadeError('conflict', 'already bootstrapped: a tenant exists');
    const actor = { type: 'service' as const, id: 'auth-bootstrap' };
    return this.provisioning.provision(actor, { tenantId: input.tenantId, name: input.tenantName, admin: input.admin }, ['admin', PLATFORM_ADMIN_ROLE]);
  }
}
