import { randomUUID } from 'node:crypto';
import { buildEvent, systemEventContext } from '@palisade/contracts';
import type { DataSource } from 'typeorm';
import { hashToken } from './lease-token';
import { LeasesRepository, type LeaseGrantWrite } from './leases.repository';

/** A `pg` pool that answers every lease statement at once and records, in order, each statement and each ring of the relay. */
function fakePool() {
  const log: string[] = [];
  const pool = {
    query: async (q: string | { name: string; values: unknown[] }) => {
      if (typeof q === 'string') {
        if (q.includes('pg_notify')) log.push('ring');
        return { rows: [] };
      }
      log.push('statement');
      return { rows: (q.values[0] as unknown[]).map((_, i) => ({ ord: i + 1 })) };
    },
  };
  return { log, dataSource: { driver: { master: pool } } as unknown as DataSource };
}

function grantWrite(): LeaseGrantWrite {
  const leaseId = randomUUID();
  const secretId = randomUUID();
  const now = new Date();
  const expiresAt = new Date(now.getTime() + 30_000);
  return {
    secretStreamVersion: 1,
    lease: { leaseId, tokenHash: hashToken(`pl_${randomUUID()}`), tenantId: 'acme', secretId, sessionId: 's', tool: 'gerrit', expiresAt, uses: 1, usesLeft: 1, grantedBy: 'agent:a', createdAt: now },
    event: buildEvent(systemEventContext('credential'), {
      type: 'credential.lease.granted',
      tenantId: 'acme',
      actor: { type: 'agent', id: 'a' },
      data: { leaseId, secretId, sessionId: 's', tool: 'gerrit', expiresAt: expiresAt.toISOString(), uses: 1 },
    }),
  };
}

describe('LeasesRepository: the outbox relay is rung after every committed lease statement, coalesced', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('rings once after a statement, and once more for all that committed while a ring was in flight or within its gap', async () => {
    const { log, dataSource } = fakePool();
    const repo = new LeasesRepository(() => dataSource, 'vault');
    await repo.commitGrants([grantWrite()]);
    await jest.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['statement', 'ring']);
    // three more statements within the first ring's gap: one ring for them, after the last one committed
    for (let i = 0; i < 3; i++) await repo.commitGrants([grantWrite()]);
    await jest.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['statement', 'ring', 'statement', 'statement', 'statement']);
    await jest.advanceTimersByTimeAsync(5);
    expect(log).toEqual(['statement', 'ring', 'statement', 'statement', 'statement', 'ring']);
    await jest.advanceTimersByTimeAsync(50);
    expect(log.filter((entry) => entry === 'ring')).toHaveLength(2); // nothing committed since: no ring
  });

  it('rings again after the gap for a statement that commits later', async () => {
    const { log, dataSource } = fakePool();
    const repo = new LeasesRepository(() => dataSource, 'vault');
    await repo.commitGrants([grantWrite()]);
    await jest.advanceTimersByTimeAsync(10);
    await repo.commitGrants([grantWrite()]);
    await jest.advanceTimersByTimeAsync(0);
    expect(log).toEqual(['statement', 'ring', 'statement', 'ring']);
  });
});
