import { Reflector } from '@nestjs/core';
import type { ExecutionContext } from '@nestjs/common';
import { PolicyGuard, RequirePermission } from './guard';
import type { AuthorizeDecision, AuthorizeRequest } from './types';

class Routes {
  @RequirePermission('read', 'document', 'id')
  read() {}
  open() {}
}

const contextFor = (handler: () => void, principal?: object, params: Record<string, string> = { id: 'd-1' }, headers: Record<string, string> = {}) =>
  ({
    getHandler: () => handler,
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => ({ principal, params, headers }) }),
  }) as unknown as ExecutionContext;

const alice = { type: 'user', id: 'alice', tenantId: 'acme' };

describe('PolicyGuard (fail-closed)', () => {
  const guardWith = (authorize: (r: AuthorizeRequest) => Promise<AuthorizeDecision>) => new PolicyGuard(new Reflector(), { authorize });

  it('asks for the principal, the action and the route resource, and passes an allow', async () => {
    const seen: AuthorizeRequest[] = [];
    const guard = guardWith(async (r) => (seen.push(r), { decision: 'allow', rule: 'x', reason: 'ok' }));
    await expect(guard.canActivate(contextFor(Routes.prototype.read, alice))).resolves.toBe(true);
    expect(seen).toEqual([{ tenantId: 'acme', subject: { type: 'user', id: 'alice' }, action: 'read', resource: { type: 'document', id: 'd-1' } }]);
  });

  it("forwards an agent's or a person's token (the policy service takes the user, teams and department from it), never the acting user it was told", async () => {
    const seen: AuthorizeRequest[] = [];
    const guard = guardWith(async (r) => (seen.push(r), { decision: 'allow', rule: 'x', reason: 'ok' }));
    const agent = { type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'alice' };
    await guard.canActivate(contextFor(Routes.prototype.read, agent, { id: 'd-1' }, { authorization: 'Bearer a.b.c' }));
    expect(seen[0].subject).toEqual({ type: 'agent', id: 'release-bot', token: 'a.b.c' });
    await guard.canActivate(contextFor(Routes.prototype.read, alice, { id: 'd-1' }, { authorization: 'Bearer u.s.r' }));
    expect(seen[1].subject).toEqual({ type: 'user', id: 'alice', token: 'u.s.r' }); // verified there like an agent's
    const service = { type: 'service', id: 'billing', tenantId: 'acme' };
    await guard.canActivate(contextFor(Routes.prototype.read, service, { id: 'd-1' }, { authorization: 'Bearer s.v.c' }));
    expect(seen[2].subject).toEqual({ type: 'service', id: 'billing' }); // a service speaks as itself
  });

  it('refuses a denial, a required approval, a failure, and a missing principal', async () => {
    await expect(guardWith(async () => ({ decision: 'deny', rule: 'default-deny', reason: 'no rule allows this' })).canActivate(contextFor(Routes.prototype.read, alice))).rejects.toMatchObject({ code: 'forbidden', message: 'no rule allows this' });
    await expect(guardWith(async () => ({ decision: 'requires_approval', rule: 'critical-action', reason: 'r', actionHash: 'h' })).canActivate(contextFor(Routes.prototype.read, alice))).rejects.toMatchObject({ code: 'forbidden' });
    await expect(guardWith(async () => { throw new Error('boom'); }).canActivate(contextFor(Routes.prototype.read, alice))).rejects.toMatchObject({ code: 'forbidden' });
    await expect(guardWith(async () => ({ decision: 'allow', rule: 'x', reason: 'ok' })).canActivate(contextFor(Routes.prototype.read, undefined))).rejects.toMatchObject({ code: 'forbidden' });
  });

  it('leaves routes without a required permission alone', async () => {
    await expect(guardWith(async () => { throw new Error('not asked'); }).canActivate(contextFor(Routes.prototype.open, alice))).resolves.toBe(true);
  });
});
