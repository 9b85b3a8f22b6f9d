import type { DomainEvent } from '@palisade/eventsourcing';

/**
 * `auth.revocation.issued`: what every verifying service must refuse from now on. One
 * event type on one subject (palisade.events.auth.revocation.issued), which each
 * service instance follows (libs/service-kit RevocationFeed). `at` is in seconds:
 * tokens issued at or before it are refused.
 */
export type RevocationTarget =
  | { target: 'session'; sessionId: string; at: number }
  | { target: 'subject'; subject: string; at: number }
  | { target: 'token'; jti: string; expiresAt: number }
  | { target: 'key'; kid: string };

export type RevocationEvent = DomainEvent<'auth.revocation.issued', RevocationTarget & { cause: string }>;
