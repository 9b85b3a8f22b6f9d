import type { Principal } from '@palisade/contracts';
import { assertBillingAccess } from './budgets.access';

const user = (scopes: string[]): Principal => ({ type: 'user', id: 'u-1', tenantId: 't-1', scopes });

describe('billing access', () => {
  it("gives auth's billing role (billing:read, billing:admin) and tenant admins (auth:admin) reports, status and administration", () => {
    for (const scopes of [['billing:read', 'billing:admin'], ['auth:admin']]) {
      expect(() => assertBillingAccess(user(scopes), 'read')).not.toThrow();
      expect(() => assertBillingAccess(user(scopes), 'admin')).not.toThrow();
    }
  });

  it('lets billing:read read and not administer', () => {
    expect(() => assertBillingAccess(user(['billing:read']), 'read')).not.toThrow();
    expect(() => assertBillingAccess(user(['billing:read']), 'admin')).toThrow(expect.objectContaining({ code: 'forbidden' }));
  });

  it('refuses members, auditors and every agent, whatever scopes its token carries', () => {
    for (const scopes of [['agents:manage'], ['audit:read'], []]) expect(() => assertBillingAccess(user(scopes), 'read')).toThrow(expect.objectContaining({ code: 'forbidden' }));
    const agent: Principal = { type: 'agent', id: 'a-1', tenantId: 't-1', scopes: ['billing:admin', 'auth:admin'] };
    expect(() => assertBillingAccess(agent, 'read')).toThrow(/own remaining budget/);
  });
});
