import type { DomainEvent } from '@palisade/eventsourcing';

/**
 * Whose rights an API key carries: a user's, or a tenant service account's. A service
 * account answers to its sponsor, the administrator (a user) who made the key: the key
 * works only while the sponsor is active, with at most the sponsor's current scopes.
 */
export type ApiKeyOwner = { type: 'user'; id: string } | { type: 'service-account'; id: string; sponsor?: string };
export type ApiKeyRevocationReason = 'owner' | 'admin';

/** Stream `api-key-<tenant>.<keyId>`. Secrets never appear: only their SHA-256, in `api_key_secrets`. */
export type ApiKeyEvent =
  | DomainEvent<'auth.api-key.created', { keyId: string; owner: ApiKeyOwner; name: string; scopes: string[]; expiresAt: string }>
  | DomainEvent<'auth.api-key.rotated', { keyId: string; previousSecretValidUntil: string }>
  | DomainEvent<'auth.api-key.revoked', { keyId: string; reason: ApiKeyRevocationReason }>;
