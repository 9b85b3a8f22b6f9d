import type { DomainEvent } from '@palisade/eventsourcing';

/** Why a sign-in failed, as a class: never the password or what was wrong with it. */
export type SignInFailure = 'bad_credentials' | 'throttled' | 'disabled' | 'password_expired' | 'mfa_failed';
export type SignInMethod = 'password' | 'oidc' | 'saml' | 'ldap';
/** Second factors. */
export type MfaMethod = 'totp';
export type SessionRevocationReason = 'admin' | 'refresh_token_reuse' | 'password_changed';

export type UserEvent =
  | DomainEvent<'auth.user.registered', { userId: string; roles: string[]; identityProvider?: string }>
  | DomainEvent<'auth.user.roles-changed', { userId: string; roles: string[] }>
  | DomainEvent<'auth.user.password-changed', { userId: string; by: 'self' | 'admin'; expiresAt: string | null }>
  | DomainEvent<'auth.user.signed-in', { userId: string; sessionId: string; method: SignInMethod; mfa: boolean; sessionExpiresAt: string }>
  | DomainEvent<'auth.user.sign-in-failed', { userId: string; method: SignInMethod; reason: SignInFailure }>
  | DomainEvent<'auth.user.locked-out', { userId: string; scope: 'account' | 'address'; failures: number; until: string }>
  | DomainEvent<'auth.user.signed-out', { userId: string; sessionId: string }>
  | DomainEvent<'auth.user.session-revoked', { userId: string; sessionId: string; reason: SessionRevocationReason }>
  | DomainEvent<'auth.user.sessions-revoked', { userId: string; at: string }>
  | DomainEvent<'auth.user.disabled', { userId: string }>
  | DomainEvent<'auth.user.mfa-enrolled', { userId: string; method: MfaMethod; recoveryCodes: number }>
  | DomainEvent<'auth.user.mfa-reset', { userId: string }>
  | DomainEvent<'auth.user.recovery-code-used', { userId: string; remaining: number }>
  /** The user's data subject was erased in the audit service (`erasure`: that event's id): the account is gone for good. */
  | DomainEvent<'auth.user.erased', { userId: string; erasure: string }>;

export type UserEventType = UserEvent['type'];
