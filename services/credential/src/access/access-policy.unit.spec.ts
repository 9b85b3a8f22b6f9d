import type { Principal } from '@palisade/contracts';
import { authorize, CREDENTIAL_ACTIONS, ScopeAccessPolicy } from './access-policy';

const policy = new ScopeAccessPolicy();
const user = (scopes: string[]): Principal => ({ type: 'user', id: 'u-1', tenantId: 'acme', scopes });
const agent = (scopes: string[]): Principal => ({ type: 'agent', id: 'a-1', tenantId: 'acme', actingFor: 'u-1', scopes });
const secret = { secretId: 's-1', scopes: ['tool:gerrit'] };

describe('ScopeAccessPolicy (default CredentialAccessPolicy)', () => {
  it.each(CREDENTIAL_ACTIONS)('denies %s without the scope (deny by default)', async (action) => {
    expect(await policy.decide({ principal: user([]), action, secret, tool: 'gerrit' })).toEqual({ allowed: false, reason: `the token lacks the scope credential:${action}` });
  });

  it.each(CREDENTIAL_ACTIONS)('allows %s with credential:<action>', async (action) => {
    expect(await policy.decide({ principal: user([`credential:${action}`]), action, secret, tool: 'gerrit' })).toEqual({ allowed: true });
  });

  it('lets credential:admin administer but not consume', async () => {
    for (const action of CREDENTIAL_ACTIONS.filter((a) => a !== 'use')) {
      expect((await policy.decide({ principal: user(['credential:admin']), action, secret })).allowed).toBe(true);
    }
    expect((await policy.decide({ principal: user(['credential:admin']), action: 'use', secret, tool: 'gerrit' })).allowed).toBe(false);
  });

  it('never lets an agent create, rotate, revoke, delete or manage keys, whatever its scopes', async () => {
    const all = agent(['credential:admin', ...CREDENTIAL_ACTIONS.map((a) => `credential:${a}`)]);
    for (const action of ['create', 'rotate', 'revoke', 'delete', 'manage_keys'] as const) {
      const decision = await policy.decide({ principal: all, action, secret });
      expect(decision).toEqual({ allowed: false, reason: expect.stringContaining('an agent may not') });
    }
    expect((await policy.decide({ principal: all, action: 'use', secret, tool: 'gerrit' })).allowed).toBe(true);
  });

  it('allows use only for a tool within the secret scopes', async () => {
    const p = agent(['credential:use']);
    expect(await policy.decide({ principal: p, action: 'use', secret, tool: 'doors' })).toEqual({ allowed: false, reason: 'the secret is not scoped to tool doors' });
    expect(await policy.decide({ principal: p, action: 'use', secret })).toEqual({ allowed: false, reason: 'a lease names a secret and a tool' });
  });

  it('authorize() throws forbidden with the reason', async () => {
    await expect(authorize(policy, { principal: user([]), action: 'create' })).rejects.toMatchObject({ code: 'forbidden', message: 'the token lacks the scope credential:create' });
    await expect(authorize(policy, { principal: user(['credential:create']), action: 'create' })).resolves.toBeUndefined();
  });
});
