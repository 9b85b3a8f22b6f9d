import type { DomainEvent } from '@palisade/eventsourcing';

/** A tenant's rules for local passwords. */
export interface PasswordPolicy {
  minLength: number;
  /** Of lower, upper, digit, symbol: how many must appear. */
  minClasses: number;
  /** A new password may not equal any of the last N. */
  historySize: number;
  /** Days a password is valid; 0 = never expires. */
  maxAgeDays: number;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { minLength: 12, minClasses: 3, historySize: 5, maxAgeDays: 0 };

export type TenantEvent =
  | DomainEvent<'auth.tenant.created', { tenantId: string; name: string; passwordPolicy: PasswordPolicy; mfaRequired: boolean }>
  | DomainEvent<'auth.tenant.password-policy-changed', { tenantId: string; passwordPolicy: PasswordPolicy }>
  | DomainEvent<'auth.tenant.mfa-requirement-changed', { tenantId: string; mfaRequired: boolean }>;
