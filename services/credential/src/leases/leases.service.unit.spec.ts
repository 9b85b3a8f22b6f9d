import { systemEventContext, type Principal } from '@palisade/contracts';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import { PolicyAccessPolicy } from '../access/policy-access-policy';
import type { SecretRow } from '../credential.repository';
import type { LeaseGrantWrite } from './leases.repository';
import { LeasesService } from './leases.service';

const agentToken = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJoZWxwZXIiLCJhY3QiOnsic3ViIjoiYm9iIn19.c2lnbmF0dXJl';
const agent: Principal = { type: 'agent', id: 'helper', tenantId: 'acme', actingFor: 'bob' };
const now = new Date('2026-12-03T10:00:00Z');
const secret = {
  tenantId: 'acme',
  secretId: '6a1f3c8e-0000-4000-8000-000000000001',
  name: 'gerrit',
  scopes: ['tool:gerrit'],
  state: 'active',
  currentVersion: 1,
} as SecretRow;

function leasesWith(answer: (r: AuthorizeRequest) => AuthorizeDecision) {
  const asked: AuthorizeRequest[] = [];
  const written: LeaseGrantWrite[] = [];
  const service = new LeasesService({
    repo: {
      secretForLease: async (tenantId, secretId) => (tenantId === secret.tenantId && secretId === secret.secretId ? secret : undefined),
      findByToken: async () => undefined,
      grant: async (write) => void written.push(write),
      redeem: async () => undefined,
    },
    material: { decrypt: async () => Buffer.alloc(0) },
    policy: new PolicyAccessPolicy(() => ({ authorize: async (r: AuthorizeRequest) => (asked.push(r), answer(r)) })),
    eventContext: systemEventContext('credential'),
    limits: { defaultTtlSeconds: 30, maxTtlSeconds: 60, maxUses: 10 },
    now: () => now,
  });
  return { service, asked, written };
}

describe("LeasesService.grant: the agent's token goes to the policy service and nowhere else", () => {
  const input = { secretId: secret.secretId, sessionId: 'sbx-1', tool: 'gerrit' };

  it('forwards the presented token with both decisions; the lease row, its event and the answer do not hold it', async () => {
    const { service, asked, written } = leasesWith(() => ({ decision: 'allow', rule: 'r', reason: 'ok' }));
    const grant = await service.grant(agent, input, `Bearer ${agentToken}`);
    expect(asked.map((r) => [r.action, r.subject])).toEqual([
      ['credential.use', { type: 'agent', id: 'helper', token: agentToken }],
      ['invoke', { type: 'agent', id: 'helper', token: agentToken }],
    ]);
    expect(written).toHaveLength(1);
    const recorded = JSON.stringify(written);
    expect(recorded).not.toContain(agentToken);
    expect(recorded).not.toContain('authorization');
    expect(JSON.stringify(grant)).not.toContain(agentToken);
    expect(written[0].event.actor).toEqual({ type: 'agent', id: 'helper' });
  });

  it('is refused, with nothing written, when the policy service does not accept the agent', async () => {
    const { service, asked, written } = leasesWith((r) =>
      r.subject.token ? { decision: 'allow', rule: 'r', reason: 'ok' } : { decision: 'deny', rule: 'agent-unverified', reason: 'subject.token is required for an agent' },
    );
    await expect(service.grant(agent, input)).rejects.toMatchObject({ code: 'forbidden', message: expect.stringContaining('agent-unverified') });
    expect(asked[0].subject).toEqual({ type: 'agent', id: 'helper' });
    expect(written).toEqual([]);
  });
});
