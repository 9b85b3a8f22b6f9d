import type { DomainEvent } from '@palisade/eventsourcing';

/**
 * `auth.revocation.issued`: what every verifying service must refuse from now on. One
 * event type on one subject (palisade.events.auth.revocation.issued), which each
 * service instance follows (libs/service-kit RevocationFeed). A session is revoked with
 * every token it ever had; a subject's tokens issued up to `atMs` (milliseconds, compared
 * with the tokens' `iat_ms`) are refused. `at` (seconds) is kept for older verifiers.
 */
export type RevocationTarget =
  | { target: 'session'; sessionId: string; at: number; atMs: number }
  | { target: 'subject'; subject: string; at: number; atMs: number }
  | { target: 'token'; jti: string; expiresAt: number }
  | { target: 'key'; kid: string };

export type RevocationEvent = DomainEvent<'auth.revocation.issued', RevocationTarget & { cause: string }>;
