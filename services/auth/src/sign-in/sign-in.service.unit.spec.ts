import { isSealedPersonal, systemEventContext, type EventEnvelope } from '@palisade/contracts';
import type { Transaction } from '@palisade/eventsourcing';
import { SignInService } from './sign-in.service';

/**
 * Sign-in attempts that change no account (a failure of an unknown account, a refusal
 * while locked) carry personal data (the name tried, the source address): it is sealed by
 * audit before the transaction opens, so a spray of attempts cannot hold database
 * connections while audit answers.
 */
function harness(throttle: { reserve: () => Promise<unknown> }) {
  let inTransaction = false;
  const sealedWhere: boolean[] = [];
  const appended: EventEnvelope[] = [];
  const transactions = {
    inTransaction: async <T>(work: (tx: Transaction) => Promise<T>): Promise<T> => {
      inTransaction = true;
      try {
        return await work({} as Transaction);
      } finally {
        inTransaction = false;
      }
    },
  };
  const store = {
    sealPersonal: async (events: readonly EventEnvelope[]) => {
      sealedWhere.push(inTransaction);
      return events.map((e) => ({ ...e, personal: { subjectId: e.personal!.subjectId, keyId: '0190a1b2-c3d4-4e5f-8a6b-7c8d9e0f1a2b', alg: 'A256GCM' as const, sealed: 'c2VhbGVk' } }));
    },
    appendToStream: async (_tx: Transaction, _stream: string, events: readonly EventEnvelope[]) => {
      appended.push(...events);
      return { nextVersion: events.length };
    },
  };
  const unused = {} as never;
  const service = new SignInService(
    transactions,
    unused,
    store,
    systemEventContext('auth'),
    { findByUsername: async () => undefined, rehash: async () => undefined } as never,
    { find: async () => ({ id: 'acme' }) } as never,
    unused,
    unused,
    throttle as never,
    unused,
    { verifyDecoy: async () => false } as never,
    unused,
    { AUTH_SESSION_TTL_SEC: 900, AUTH_OPERATOR_TENANT: 'platform', AUTH_LOCKOUT_BASE_SEC: 1, AUTH_LOCKOUT_MAX_SEC: 60, AUTH_LOCKOUT_THRESHOLD: 5, AUTH_ADDRESS_LOCKOUT_THRESHOLD: 50 },
    unused,
  );
  return { service, sealedWhere, appended };
}

describe('SignInService: attempts that change no account', () => {
  it('an unknown account: seals the failure before the transaction and stores only the sealed form', async () => {
    const h = harness({ reserve: async () => ({ granted: true }) });

    await expect(h.service.signIn({ tenantId: 'acme', username: 'nobody@example.com', password: 'wrong', sourceAddress: '192.0.2.7' } as never)).rejects.toMatchObject({ code: 'unauthenticated' });
    expect(h.sealedWhere).toEqual([false]);
    expect(h.appended).toHaveLength(1);
    expect(h.appended[0].type).toBe('auth.user.sign-in-failed');
    expect(isSealedPersonal(h.appended[0].personal!)).toBe(true);
    expect(JSON.stringify(h.appended)).not.toContain('nobody@example.com');
  });

  it('a refusal while locked: records the throttled attempt sealed before its transaction, then answers 429', async () => {
    const now = new Date('2026-12-04T10:00:00Z');
    const h = harness({ reserve: async () => ({ granted: false, lockedUntil: new Date(now.getTime() + 30_000) }) });

    await expect(h.service.reserveAttempt({ tenantId: 'acme', accountName: 'alice', userId: 'u-1', method: 'password', sourceAddress: '192.0.2.99' }, now)).rejects.toMatchObject({ code: 'rate_limited' });
    expect(h.sealedWhere).toEqual([false]);
    expect(h.appended).toHaveLength(1);
    expect(h.appended[0].data).toMatchObject({ userId: 'u-1', reason: 'throttled' });
    expect(isSealedPersonal(h.appended[0].personal!)).toBe(true);
    expect(JSON.stringify(h.appended)).not.toContain('192.0.2.99');
  });
});
