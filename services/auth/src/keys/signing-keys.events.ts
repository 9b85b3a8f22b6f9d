import type { DomainEvent } from '@palisade/eventsourcing';

/** Lifecycle of a token signing key (tenant `system`); key material never appears. */
export type SigningKeyEvent =
  | DomainEvent<'auth.signing-key.created', { kid: string; alg: 'EdDSA' }>
  | DomainEvent<'auth.signing-key.activated', { kid: string }>
  | DomainEvent<'auth.signing-key.retired', { kid: string }>
  | DomainEvent<'auth.signing-key.revoked', { kid: string }>;
