import { DeciderSpecification } from '@palisade/eventsourcing';
import { leasesDecider, type KeyState, type LeaseCommand } from './leases.decider';
import type { LeaseEvent } from './leases.events';

const spec = DeciderSpecification.for(leasesDecider({ defaultTtlSeconds: 30, maxTtlSeconds: 60, maxUses: 10 }));
const T0 = new Date('2026-11-22T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const SECRET = '0192f1a0-0000-7000-8000-000000000001';
const LEASE = '0192f1a0-0000-7000-8000-00000000000a';

const grant = (extra: Partial<Extract<LeaseCommand, { type: 'grant' }>['data']> = {}): LeaseCommand => ({
  type: 'grant',
  data: { leaseId: LEASE, secretId: SECRET, sessionId: 'sbx-1', tool: 'gerrit', secretState: 'active', ...extra },
  metadata: { tenantId: 'acme', actor: { type: 'agent', id: 'agent-1' }, now: T0 },
});
const granted = (uses = 1, ttl = 30): LeaseEvent => ({
  type: 'credential.lease.granted',
  data: { leaseId: LEASE, secretId: SECRET, sessionId: 'sbx-1', tool: 'gerrit', expiresAt: at(ttl).toISOString(), uses },
});

type SecretFacts = { state: string | null; version: number | null; keyState: KeyState | null };
const live: SecretFacts = { state: 'active', version: 2, keyState: 'active' };
const redeem = (extra: { sessionId?: string; tool?: string; now?: Date; secret?: Partial<SecretFacts> } = {}): LeaseCommand => ({
  type: 'redeem',
  data: { sessionId: extra.sessionId ?? 'sbx-1', tool: extra.tool ?? 'gerrit', consumer: 'sandbox-orchestrator', secret: { ...live, ...extra.secret } },
  metadata: { tenantId: 'acme', actor: { type: 'service', id: 'sandbox-orchestrator' }, now: extra.now ?? at(5) },
});
const read = (version = 2): LeaseEvent => ({
  type: 'credential.secret.read',
  data: { secretId: SECRET, version, leaseId: LEASE, sessionId: 'sbx-1', tool: 'gerrit', consumer: 'sandbox-orchestrator' },
});

describe('lease decider: grant', () => {
  it('given no lease, grants one use for the default TTL', () => {
    spec([]).when(grant()).then([granted()]);
  });

  it('grants the TTL and uses asked for, within the limits', () => {
    spec([]).when(grant({ ttlSeconds: 60, uses: 10 })).then([granted(10, 60)]);
  });

  it('refuses a TTL over the ceiling and more uses than allowed', () => {
    spec([]).when(grant({ ttlSeconds: 61 })).thenThrows('validation', 'ttlSeconds: at most 60');
    spec([]).when(grant({ uses: 11 })).thenThrows('validation', 'uses: at most 10');
  });

  it('refuses a lease on a revoked secret', () => {
    spec([]).when(grant({ secretState: 'revoked' })).thenThrows('illegal_state', 'the secret is revoked');
  });

  it('never grants the same lease twice', () => {
    spec([granted()]).when(grant()).thenThrows('conflict');
  });
});

describe('lease decider: redeem', () => {
  it('given a granted lease, a redemption in time for its session and tool releases the current version, recorded as read', () => {
    spec([granted()]).when(redeem()).then([read()]);
  });

  it('is not found without a lease, or for another session or tool', () => {
    spec([]).when(redeem()).thenThrows('not_found', 'lease not found');
    spec([granted()]).when(redeem({ sessionId: 'sbx-2' })).thenThrows('not_found');
    spec([granted()]).when(redeem({ tool: 'doors' })).thenThrows('not_found');
  });

  it('refuses an expired lease (at its expiry, not only after)', () => {
    spec([granted()]).when(redeem({ now: at(30) })).thenThrows('illegal_state', 'lease expired');
    spec([granted()]).when(redeem({ now: at(29.999) })).then([read()]);
  });

  it('single use: the second redemption is refused; a multi-use lease gives exactly its uses', () => {
    spec([granted(), read()]).when(redeem()).thenThrows('illegal_state', 'lease already used');
    spec([granted(3), read(), read()]).when(redeem()).then([read()]);
    spec([granted(3), read(), read(), read()]).when(redeem()).thenThrows('illegal_state', 'lease already used');
  });

  it('releases nothing once the secret is revoked, has no readable version, or its key is revoked or retired', () => {
    spec([granted()]).when(redeem({ secret: { state: 'revoked' } })).thenThrows('illegal_state', 'the secret is revoked');
    spec([granted()]).when(redeem({ secret: { state: null, version: null, keyState: null } })).thenThrows('illegal_state', 'the secret is revoked');
    spec([granted()]).when(redeem({ secret: { version: null, keyState: null } })).thenThrows('illegal_state', 'no readable version');
    spec([granted()]).when(redeem({ secret: { keyState: 'revoked' } })).thenThrows('illegal_state', 'key-encryption key is revoked');
    spec([granted()]).when(redeem({ secret: { keyState: 'retired' } })).thenThrows('illegal_state', 'key-encryption key is revoked');
    spec([granted()]).when(redeem({ secret: { keyState: 'retiring' } })).then([read()]);
  });
});
