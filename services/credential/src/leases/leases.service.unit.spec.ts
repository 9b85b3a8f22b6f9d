import { systemEventContext, type Principal } from '@palisade/contracts';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import { ScopeAccessPolicy } from '../access/access-policy';
import { PolicyAccessPolicy } from '../access/policy-access-policy';
import type { SecretRow, VersionMaterial } from '../credential.repository';
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
  streamVersion: 1,
} as SecretRow;

function leasesWith(answer: (r: AuthorizeRequest) => AuthorizeDecision) {
  const asked: AuthorizeRequest[] = [];
  const written: LeaseGrantWrite[] = [];
  const service = new LeasesService({
    repo: {
      secretForLease: async (tenantId, secretId) => (tenantId === secret.tenantId && secretId === secret.secretId ? { ...secret, material: null, kek: null } : undefined),
      findByToken: async () => undefined,
      grant: async (write) => (written.push(write), true),
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

describe('LeasesService.redeem: the grant hands its read over to the redemption', () => {
  const kek = { tenantId: 'acme', version: 1, provider: 'local', origin: 'generated', keyRef: 'local:k1', state: 'active' } as const;
  const materialOf = (version: number) => ({ tenantId: 'acme', secretId: secret.secretId, version, cipher: 'aes-256-gcm', kekVersion: 1, wrappedDek: Buffer.alloc(0) }) as unknown as VersionMaterial;
  const input = { secretId: secret.secretId, sessionId: 'sbx-1', tool: 'gerrit' };

  function vault(redeemAnswers: Array<number | undefined>) {
    const reads: Buffer[] = [];
    const decrypted: number[] = [];
    let lease: LeaseGrantWrite['lease'] | undefined;
    const clock = { now: now };
    const service = new LeasesService({
      repo: {
        secretForLease: async () => ({ ...secret, material: materialOf(1), kek }),
        findByToken: async (hash) => {
          reads.push(hash);
          // Read afresh: the secret was rotated to version 2 since the grant.
          return { ...lease!, secretState: 'active', version: 2, material: materialOf(2), kek };
        },
        grant: async (write) => ((lease = write.lease), true),
        redeem: async () => redeemAnswers.shift(),
      },
      material: { decrypt: async (m) => (decrypted.push(m.version), Buffer.from(`value-v${m.version}`)) },
      policy: new ScopeAccessPolicy(),
      eventContext: systemEventContext('credential'),
      limits: { defaultTtlSeconds: 30, maxTtlSeconds: 60, maxUses: 10 },
      now: () => clock.now,
    });
    return { service, reads, decrypted, clock };
  }
  const redeemer = { tenantId: 'acme', sessionId: 'sbx-1', tool: 'gerrit' };
  const user: Principal = { type: 'agent', id: 'helper', tenantId: 'acme', actingFor: 'bob', scopes: ['credential:use'] };

  it('redeems a lease granted here without reading it again', async () => {
    const { service, reads, decrypted } = vault([1]);
    const grant = await service.grant(user, input);
    await expect(service.redeem('sandbox-orchestrator', { ...redeemer, token: grant.token })).resolves.toMatchObject({ version: 1, value: 'value-v1' });
    expect(reads).toHaveLength(0);
    expect(decrypted).toEqual([1]);
  });

  it('does not release an expired handed-over lease: it is read afresh and refused', async () => {
    const { service, reads, decrypted, clock } = vault([1]);
    const grant = await service.grant(user, { ...input, ttlSeconds: 1 });
    clock.now = new Date(now.getTime() + 1_001);
    await expect(service.redeem('sandbox-orchestrator', { ...redeemer, token: grant.token })).rejects.toMatchObject({ code: 'illegal_state' });
    expect(reads).toHaveLength(1);
    expect(decrypted).toEqual([]);
  });

  it('reads the lease afresh and decides again when its statement refuses the row as granted (here: a rotation since)', async () => {
    const { service, reads, decrypted } = vault([undefined, 1]);
    const grant = await service.grant(user, input);
    await expect(service.redeem('sandbox-orchestrator', { ...redeemer, token: grant.token })).resolves.toMatchObject({ version: 2, value: 'value-v2' });
    expect(reads).toHaveLength(1);
    expect(decrypted).toEqual([1, 2]);
  });

  it('refuses, on the fresh read, what the decider refuses (another session), as without the hand-over', async () => {
    const { service, reads } = vault([1]);
    const grant = await service.grant(user, input);
    await expect(service.redeem('sandbox-orchestrator', { ...redeemer, sessionId: 'sbx-2', token: grant.token })).rejects.toMatchObject({ code: 'not_found' });
    expect(reads).toHaveLength(1);
  });
});

describe('LeasesService.grant: decided on the secret row of an earlier grant, written only while the secret is still that row', () => {
  const input = { secretId: secret.secretId, sessionId: 'sbx-1', tool: 'gerrit' };
  const user: Principal = { type: 'agent', id: 'helper', tenantId: 'acme', actingFor: 'bob', scopes: ['credential:use'] };

  /** `rows`: what each fresh read answers, in turn; `written`: what each grant statement answers, in turn (true when unset). */
  function vault(rows: Array<Partial<SecretRow> | undefined>, writes: boolean[] = []) {
    const reads: Array<[string, string]> = [];
    const statements: Array<{ secretStreamVersion: number; tenantId: string }> = [];
    const asked: Array<readonly string[]> = [];
    const clock = { now: now };
    const service = new LeasesService({
      repo: {
        secretForLease: async (tenantId, secretId) => {
          reads.push([tenantId, secretId]);
          const row = rows.shift();
          return row && { ...secret, tenantId, ...row, material: null, kek: null };
        },
        findByToken: async () => undefined,
        grant: async (write) => (statements.push({ secretStreamVersion: write.secretStreamVersion, tenantId: write.lease.tenantId }), writes.shift() ?? true),
        redeem: async () => undefined,
      },
      material: { decrypt: async () => Buffer.alloc(0) },
      policy: { decide: async (r) => (asked.push(r.secret!.scopes), r.secret!.scopes.includes(`tool:${r.tool}`) ? { allowed: true } : { allowed: false, reason: 'not scoped' }) },
      eventContext: systemEventContext('credential'),
      limits: { defaultTtlSeconds: 30, maxTtlSeconds: 60, maxUses: 10 },
      now: () => clock.now,
    });
    return { service, reads, statements, asked, clock };
  }

  it('reads the secret once for two grants, asks the policy for each, and binds each statement to the stream version decided on', async () => {
    const { service, reads, statements, asked } = vault([{ streamVersion: 4 }]);
    await service.grant(user, input);
    await service.grant(user, { ...input, sessionId: 'sbx-2' });
    expect(reads).toHaveLength(1);
    expect(asked).toHaveLength(2);
    expect(statements.map((s) => s.secretStreamVersion)).toEqual([4, 4]);
  });

  it('decides again on a fresh read when the statement refuses the remembered row: a revocation since is refused', async () => {
    const { service, reads, statements } = vault([{ streamVersion: 4 }, { streamVersion: 5, state: 'revoked' }], [true, false]);
    await service.grant(user, input);
    await expect(service.grant(user, input)).rejects.toMatchObject({ code: 'illegal_state', message: 'the secret is revoked' });
    expect(reads).toHaveLength(2);
    expect(statements.map((s) => s.secretStreamVersion)).toEqual([4, 4]);
  });

  it('asks the policy again on the fresh row: a scope removed since is refused', async () => {
    const { service, asked, statements } = vault([{ streamVersion: 4 }, { streamVersion: 5, scopes: ['tool:doors'] }], [true, false]);
    await service.grant(user, input);
    await expect(service.grant(user, input)).rejects.toMatchObject({ code: 'forbidden' });
    expect(asked).toEqual([['tool:gerrit'], ['tool:gerrit'], ['tool:doors']]);
    expect(statements).toHaveLength(2);
  });

  it("never decides a tenant's grant on another tenant's remembered row", async () => {
    const { service, reads, statements } = vault([{ streamVersion: 4 }, undefined]);
    await service.grant(user, input);
    await expect(service.grant({ ...user, tenantId: 'globex' }, input)).rejects.toMatchObject({ code: 'not_found' });
    expect(reads).toEqual([
      ['acme', secret.secretId],
      ['globex', secret.secretId],
    ]);
    expect(statements.map((s) => s.tenantId)).toEqual(['acme']);
  });

  it('reads the secret again once the remembered row is more than a minute old', async () => {
    const { service, reads, clock } = vault([{ streamVersion: 4 }, { streamVersion: 4 }]);
    await service.grant(user, input);
    clock.now = new Date(now.getTime() + 60_000);
    await service.grant(user, input);
    expect(reads).toHaveLength(1);
    clock.now = new Date(now.getTime() + 60_001);
    await service.grant(user, input);
    expect(reads).toHaveLength(2);
  });

  it('gives up with a conflict when the secret changes under each of three decisions', async () => {
    const { service, reads, statements } = vault([{ streamVersion: 4 }, { streamVersion: 5 }, { streamVersion: 6 }], [false, false, false]);
    await expect(service.grant(user, input)).rejects.toMatchObject({ code: 'conflict' });
    expect(reads).toHaveLength(3);
    expect(statements.map((s) => s.secretStreamVersion)).toEqual([4, 5, 6]);
  });
});
