import type { DomainEvent } from '@palisade/eventsourcing';

/**
 * Whose rights an API key carries: a user's, or a tenant service account's. A service
 * account answers to its sponsor, the administrator (a user) who made the key: the key
 * works only while the sponsor is active, with at most the sponsor's current scopes. A
 * registered agent's key (`agent`, the agent's id) answers to the agent's owning user the
 * same way, and works only while the agent (and its parent, if any) is active.
 */
export type ApiKeyOwner = { type: 'user'; id: string } | { type: 'service-account'; id: string; sponsor?: string } | { type: 'agent'; id: string };
export type ApiKeyRevocationReason = 'owner' | 'admin';

/** Stream `api-key-<tenant>.<keyId>`. Secrets never appear: only their SHA-256, in `api_key_secrets`. */
export type ApiKeyEvent =
  | DomainEvent<'auth.api-key.created', { keyId: string; owner: ApiKeyOwner; name: string; scopes: string[]; expiresAt: string }>
  | DomainEvent<'auth.api-key.rotated', { keyId: string; previousSecretValidUntil: string }>
  | DomainEvent<'auth.api-key.revoked', { keyId: string; reason: ApiKeyRevocationReason }>;
