import type { Principal } from '@palisade/contracts';
import { failClosed, type AuthorizeDecision, type AuthorizeRequest } from '@palisade/policy-client';
import { authorize, CREDENTIAL_ACTIONS } from './access-policy';
import { accessDecisionOf, PolicyAccessPolicy, policyRequestsFor } from './policy-access-policy';

const alice: Principal = { type: 'user', id: 'alice', tenantId: 'acme', scopes: [] };
const agent: Principal = { type: 'agent', id: 'helper', tenantId: 'acme', actingFor: 'bob', scopes: ['credential:admin'] };
const secret = { secretId: 's-1', scopes: ['tool:gerrit', 'tool:doors'] };
/** An agent's access token as presented to the credential service (opaque here). */
const agentToken = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJoZWxwZXIifQ.c2ln';
const allow = (rule = 'main/r'): AuthorizeDecision => ({ decision: 'allow', rule, reason: `allowed by ${rule}` });

/** Answers from a table (action → decision), recording what it was asked. */
class FakePolicyClient {
  readonly asked: AuthorizeRequest[] = [];
  constructor(private readonly answer: (r: AuthorizeRequest) => AuthorizeDecision | Promise<AuthorizeDecision>) {}
  async authorize(r: AuthorizeRequest): Promise<AuthorizeDecision> {
    this.asked.push(r);
    return this.answer(r);
  }
}

describe('policyRequestsFor (AccessRequest → policy decisions)', () => {
  it('asks credential.<action> on the secret, with its scopes, for the principal', () => {
    expect(policyRequestsFor({ principal: alice, action: 'rotate', secret })).toEqual([
      { tenantId: 'acme', subject: { type: 'user', id: 'alice' }, action: 'credential.rotate', resource: { type: 'credential', id: 's-1', attributes: { scopes: ['tool:gerrit', 'tool:doors'] } } },
    ]);
  });

  it('asks without a resource id when there is no secret yet (create, list, key ring)', () => {
    expect(policyRequestsFor({ principal: alice, action: 'create' })).toEqual([
      { tenantId: 'acme', subject: { type: 'user', id: 'alice' }, action: 'credential.create', resource: { type: 'credential' } },
    ]);
    expect(policyRequestsFor({ principal: alice, action: 'manage_keys' })[0].action).toBe('credential.manage_keys');
  });

  it("for use, forwards the agent's token (never the user it acts for, which the policy service takes from the token) and asks invoke on the tool too", () => {
    expect(policyRequestsFor({ principal: agent, action: 'use', secret, tool: 'gerrit', authorization: `Bearer ${agentToken}` })).toEqual([
      {
        tenantId: 'acme',
        subject: { type: 'agent', id: 'helper', token: agentToken },
        action: 'credential.use',
        resource: { type: 'credential', id: 's-1', attributes: { scopes: ['tool:gerrit', 'tool:doors'], tool: 'gerrit' } },
      },
      { tenantId: 'acme', subject: { type: 'agent', id: 'helper', token: agentToken }, action: 'invoke', resource: { type: 'tool', id: 'gerrit' } },
    ]);
  });

  it("never claims an agent's user itself: without a bearer token the subject is the bare agent (the policy service denies it)", () => {
    for (const authorization of [undefined, '', 'Basic aGVscGVyOng=', 'Bearer', `Bearer ${agentToken} extra`]) {
      const subjects = policyRequestsFor({ principal: agent, action: 'use', secret, tool: 'gerrit', authorization }).map((r) => r.subject);
      expect(subjects).toEqual([
        { type: 'agent', id: 'helper' },
        { type: 'agent', id: 'helper' },
      ]);
    }
  });

  it("forwards a person's token (the policy service takes their teams from it) and keeps a service's here", () => {
    expect(policyRequestsFor({ principal: alice, action: 'read', secret, authorization: 'Bearer alice.token.sig' })[0].subject).toEqual({ type: 'user', id: 'alice', token: 'alice.token.sig' });
    const service: Principal = { type: 'service', id: 'auth', tenantId: 'acme' };
    expect(policyRequestsFor({ principal: service, action: 'read', authorization: 'Bearer svc.token.sig' })[0].subject).toEqual({ type: 'service', id: 'auth' });
  });

  it('gives action names the policy service accepts (its NAME_PATTERN)', () => {
    for (const action of CREDENTIAL_ACTIONS) expect(policyRequestsFor({ principal: alice, action })[0].action).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/);
  });
});

describe('accessDecisionOf', () => {
  const requests = policyRequestsFor({ principal: agent, action: 'use', secret, tool: 'gerrit' });

  it('allows only when every answer is an explicit allow', () => {
    expect(accessDecisionOf(requests, [allow(), allow()])).toEqual({ allowed: true });
    expect(accessDecisionOf(requests, [allow()])).toEqual({ allowed: false, reason: 'policy: no decision' });
  });

  it('names the denying rule and its reason', () => {
    const denied = accessDecisionOf(requests, [allow(), { decision: 'deny', rule: 'agent-tool-allowlist', reason: "tool gerrit is not on this agent's allowlist" }]);
    expect(denied).toEqual({ allowed: false, reason: "policy denies invoke (rule agent-tool-allowlist): tool gerrit is not on this agent's allowlist" });
  });

  it('refuses a decision that requires approval', () => {
    expect(accessDecisionOf(requests, [{ decision: 'requires_approval', rule: 'critical-action', reason: 'x', actionHash: 'h' }, allow()])).toEqual({
      allowed: false,
      reason: expect.stringContaining('credential.use requires approval (rule critical-action)'),
    });
  });

  it('marks a policy service that could not decide as unavailable, even when another answer allowed', () => {
    expect(accessDecisionOf(requests, [allow(), failClosed('the policy service could not decide')])).toEqual({
      allowed: false,
      unavailable: true,
      reason: 'the policy service could not decide (the policy service could not decide): denied',
    });
  });
});

describe('PolicyAccessPolicy (fail-closed, invariants checked locally)', () => {
  it('allows what the policy allows', async () => {
    const client = new FakePolicyClient(() => allow());
    const policy = new PolicyAccessPolicy(() => client);
    await expect(policy.decide({ principal: alice, action: 'create' })).resolves.toEqual({ allowed: true });
    await expect(policy.decide({ principal: agent, action: 'use', secret, tool: 'doors' })).resolves.toEqual({ allowed: true });
    expect(client.asked.map((r) => r.action)).toEqual(['credential.create', 'credential.use', 'invoke']);
  });

  it("forwards the agent's token with every decision of an access, and keeps it out of the reasons", async () => {
    const client = new FakePolicyClient((r) => (r.action === 'invoke' ? { decision: 'deny', rule: 'agent-tool-allowlist', reason: "tool doors is not on this agent's allowlist" } : allow()));
    const policy = new PolicyAccessPolicy(() => client);
    const decision = await policy.decide({ principal: agent, action: 'use', secret, tool: 'doors', authorization: `Bearer ${agentToken}` });
    expect(decision).toEqual({ allowed: false, reason: "policy denies invoke (rule agent-tool-allowlist): tool doors is not on this agent's allowlist" });
    expect(client.asked.map((r) => r.subject)).toEqual([
      { type: 'agent', id: 'helper', token: agentToken },
      { type: 'agent', id: 'helper', token: agentToken },
    ]);
    await policy.decide({ principal: agent, action: 'read', secret, authorization: `Bearer ${agentToken}` });
    expect(client.asked[2]).toMatchObject({ action: 'credential.read', subject: { type: 'agent', id: 'helper', token: agentToken } });
  });

  it('never lets an agent change credentials, whatever the policy says, without asking it', async () => {
    const client = new FakePolicyClient(() => allow());
    const policy = new PolicyAccessPolicy(() => client);
    for (const action of ['create', 'rotate', 'revoke', 'delete', 'manage_keys'] as const) {
      await expect(policy.decide({ principal: agent, action, secret })).resolves.toEqual({ allowed: false, reason: expect.stringContaining('an agent may not') });
    }
    expect(client.asked).toEqual([]);
  });

  it('refuses a lease for a tool outside the secret scopes, whatever the policy says', async () => {
    const client = new FakePolicyClient(() => allow());
    const policy = new PolicyAccessPolicy(() => client);
    await expect(policy.decide({ principal: agent, action: 'use', secret, tool: 'jira' })).resolves.toEqual({ allowed: false, reason: 'the secret is not scoped to tool jira' });
    await expect(policy.decide({ principal: agent, action: 'use', secret })).resolves.toEqual({ allowed: false, reason: 'a lease names a secret and a tool' });
    expect(client.asked).toEqual([]);
  });

  it('denies when the policy denies', async () => {
    const policy = new PolicyAccessPolicy(() => new FakePolicyClient(() => ({ decision: 'deny', rule: 'default-deny', reason: 'no rule allows this' })));
    await expect(policy.decide({ principal: alice, action: 'read', secret })).resolves.toEqual({ allowed: false, reason: 'policy denies credential.read (rule default-deny): no rule allows this' });
  });

  it('fails closed: not connected, a throwing client, an unavailable service', async () => {
    await expect(new PolicyAccessPolicy(() => undefined).decide({ principal: alice, action: 'read' })).resolves.toMatchObject({ allowed: false, unavailable: true });
    const throwing = new PolicyAccessPolicy(() => new FakePolicyClient(() => Promise.reject(new Error('nats: connection closed'))));
    await expect(throwing.decide({ principal: alice, action: 'read' })).resolves.toEqual({ allowed: false, unavailable: true, reason: 'the policy service could not decide (the request failed): denied' });
    const down = new PolicyAccessPolicy(() => new FakePolicyClient(() => failClosed('the policy service could not decide')));
    await expect(down.decide({ principal: alice, action: 'create' })).resolves.toMatchObject({ allowed: false, unavailable: true });
  });

  it('authorize() throws unavailable (503) when nobody could decide, forbidden (403) on a denial', async () => {
    await expect(authorize(new PolicyAccessPolicy(() => undefined), { principal: alice, action: 'read' })).rejects.toMatchObject({ code: 'unavailable' });
    const denying = new PolicyAccessPolicy(() => new FakePolicyClient(() => ({ decision: 'deny', rule: 'main/no', reason: 'denied by rule main/no' })));
    await expect(authorize(denying, { principal: alice, action: 'read' })).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('rule main/no') });
  });
});
