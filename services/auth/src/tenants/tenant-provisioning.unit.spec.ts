import { PalisadeError } from '@palisade/contracts';
import { PLATFORM_ADMIN_ROLE, PLATFORM_ADMIN_SCOPE, scopesOf } from '../sessions/token-issuer';
import { TenantProvisioning } from './tenant-provisioning';

describe('platform operator scope', () => {
  it('comes from the platform-admin role only, never from being a tenant administrator', () => {
    expect(scopesOf(['admin', PLATFORM_ADMIN_ROLE], false)).toEqual(['auth:admin', 'policy:admin', 'audit:admin', 'agents:manage', PLATFORM_ADMIN_SCOPE]);
    expect(scopesOf(['admin'], true)).not.toContain(PLATFORM_ADMIN_SCOPE);
    // Members register and manage their own agents, and hold nothing administrative.
    expect(scopesOf(['member'], false)).toEqual(['agents:manage']);
  });

  it('gives an auditor the tenant\'s audit log and nothing else; an admin does not read the log by being one', () => {
    expect(scopesOf(['auditor'], false)).toEqual(['audit:read']);
    expect(scopesOf(['admin'], false)).not.toContain('audit:read');
    expect(scopesOf(['admin', 'auditor'], true)).toEqual(['auth:admin', 'policy:admin', 'audit:admin', 'auth:keys', 'agents:manage', 'audit:read', 'audit:erase']);
  });

  it('gives the billing role the billing service\'s scopes and nothing else; no other role holds them', () => {
    expect(scopesOf(['billing'], false)).toEqual(['billing:read', 'billing:admin']);
    for (const role of ['admin', 'member', 'auditor']) expect(scopesOf([role], true).filter((s) => s.startsWith('billing:'))).toEqual([]);
  });
});

describe('tenant provisioning', () => {
  const recorder = () => {
    const calls: string[] = [];
    const provisioning = new TenantProvisioning(
      { create: async (_actor, input) => (calls.push(`tenant ${input.tenantId}`), { tenantId: input.tenantId, version: 1 }) },
      { register: async (tenantId, _actor, input) => (calls.push(`user ${tenantId} ${input.username} ${input.roles.join(',')}`), { userId: '00000000-0000-4000-8000-000000000001' as const }) },
    );
    return { calls, provisioning };
  };
  const actor = { type: 'user' as const, id: 'op' };

  it('creates the tenant, then its administrator with the roles given', async () => {
    const { calls, provisioning } = recorder();
    await expect(provisioning.provision(actor, { tenantId: 'b', name: 'B', admin: { username: 'boss', password: 'Correct-Horse-7' } }, ['admin'])).resolves.toEqual({
      tenantId: 'b',
      adminUserId: '00000000-0000-4000-8000-000000000001',
    });
    expect(calls).toEqual(['tenant b', 'user b boss admin']);
  });

  it('refuses a password the new tenant’s policy would refuse before writing anything', async () => {
    const { calls, provisioning } = recorder();
    const refused = provisioning.provision(actor, { tenantId: 'b', name: 'B', admin: { username: 'boss', password: 'short' } }, ['admin']);
    await expect(refused).rejects.toBeInstanceOf(PalisadeError);
    await expect(refused).rejects.toMatchObject({ code: 'validation', message: expect.stringContaining('admin.password') });
    expect(calls).toEqual([]);
  });
});
