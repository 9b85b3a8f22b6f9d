import type { DomainEvent } from '@palisade/eventsourcing';
import type { SecretRead } from '../secrets/secrets.events';

/**
 * Lease streams, `lease-<id>`: `credential.lease.granted` at version 1, then one
 * `credential.secret.read` per redemption (the value released) at 1 + n. Never the
 * token (only its hash is stored, in the lease row) and never a value.
 */
export type LeaseGranted = DomainEvent<
  'credential.lease.granted',
  { leaseId: string; secretId: string; sessionId: string; tool: string; expiresAt: string; uses: number }
>;

export type { SecretRead };

export type LeaseEvent = LeaseGranted | SecretRead;
