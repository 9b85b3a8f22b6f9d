import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PalisadeError } from '@palisade/contracts';
import type { TenantsService } from '../tenants/tenants.service';
import type { UsersService } from '../users/users.service';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * The first tenant and its administrator, created with a one-time bootstrap token read
 * from AUTH_BOOTSTRAP_TOKEN_FILE (scripts/start.js writes one for `npm start`). It works
 * only while no tenant exists; without the file it is off.
 */
export class BootstrapService {
  constructor(
    private readonly tokenFile: string | undefined,
    private readonly tenants: TenantsService,
    private readonly users: UsersService,
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
    await this.tenants.create(actor, { tenantId: input.tenantId, name: input.tenantName });
    const { userId } = await this.users.register(input.tenantId, actor, { ...input.admin, roles: ['admin'] });
    return { tenantId: input.tenantId, adminUserId: userId };
  }
}
