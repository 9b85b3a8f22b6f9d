import type { DomainEvent } from '@palisade/eventsourcing';
import type { CipherName } from '../crypto/envelope';
import type { StorageBackend } from '../storage/ciphertext-store';

/**
 * The lifecycle of a secret, stream `secret-<id>`. What customers are promised is
 * recorded: create (who = actor, when = occurredAt, name, scopes), rotate (who, when,
 * new version, overlap), revoke (who, when, scopes affected), hard delete. Never a
 * value, a ciphertext or a key.
 */
export type SecretCreated = DomainEvent<
  'credential.secret.created',
  {
    secretId: string;
    name: string;
    scopes: string[];
    version: number;
    cipher: CipherName;
    storage: StorageBackend;
    keyVersion: number;
    rotationDays: number;
    overlapSeconds: number;
    nextRotationAt: string;
  }
>;
export type SecretRotated = DomainEvent<
  'credential.secret.rotated',
  { secretId: string; version: number; previousVersion: number; previousRetiresAt: string; rotator: string; keyVersion: number; nextRotationAt: string }
>;
export type SecretVersionRetired = DomainEvent<'credential.secret.version_retired', { secretId: string; version: number }>;
export type SecretRevoked = DomainEvent<'credential.secret.revoked', { secretId: string; scopesAffected: string[]; versionsAffected: number[]; reason: string }>;
export type SecretShredded = DomainEvent<'credential.secret.shredded', { secretId: string; versionsDestroyed: number[]; reason: string }>;
export type RotationDue = DomainEvent<'credential.secret.rotation_due', { secretId: string; dueAt: string }>;
export type RotationOverdue = DomainEvent<'credential.secret.rotation_overdue', { secretId: string; dueAt: string; overdueAt: string }>;

export type SecretEvent =
  | SecretCreated
  | SecretRotated
  | SecretVersionRetired
  | SecretRevoked
  | SecretShredded
  | RotationDue
  | RotationOverdue;

/**
 * A value released: through a lease (leaseId, sessionId, tool), or to a Palisade service
 * reading its own secret (purpose, e.g. auth's `idp-sign-in`; no lease).
 */
export type SecretRead = DomainEvent<
  'credential.secret.read',
  { secretId: string; version: number; consumer: string; leaseId?: string; sessionId?: string; tool?: string; purpose?: string }
>;
