import { PalisadeError, SYSTEM_TENANT } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import { DEFAULT_PASSWORD_POLICY, type PasswordPolicy, type TenantEvent } from './tenants.events';

export interface TenantState {
  exists: boolean;
  name?: string;
  passwordPolicy: PasswordPolicy;
  mfaRequired: boolean;
}

export type TenantCommand =
  | Command<'CreateTenant', { tenantId: string; name: string; passwordPolicy?: PasswordPolicy; mfaRequired?: boolean }>
  | Command<'ChangePasswordPolicy', { tenantId: string; passwordPolicy: PasswordPolicy }>
  | Command<'SetMfaRequirement', { tenantId: string; mfaRequired: boolean }>;

const missing = () => new PalisadeError('not_found', 'tenant not found');

/**
 * Tenant ids no tenant may have: `system` is the platform's own (service tokens, platform
 * events), the others read as the platform or a default in logs, audit records and URLs.
 * Compared without case.
 */
export const RESERVED_TENANT_IDS: readonly string[] = [SYSTEM_TENANT, 'platform', 'admin', 'palisade', 'default', 'root', 'internal', 'auth', 'operator'];

export const tenantDecider: Decider<TenantState, TenantCommand, TenantEvent> = {
  initialState: () => ({ exists: false, passwordPolicy: DEFAULT_PASSWORD_POLICY, mfaRequired: false }),

  decide(command, state) {
    switch (command.type) {
      case 'CreateTenant':
        if (RESERVED_TENANT_IDS.includes(command.data.tenantId.toLowerCase())) throw new PalisadeError('validation', `tenantId: "${command.data.tenantId}" is reserved`);
        if (state.exists) throw new PalisadeError('conflict', `tenant ${command.data.tenantId} already exists`);
        return [
          {
            type: 'auth.tenant.created',
            data: {
              tenantId: command.data.tenantId,
              name: command.data.name,
              passwordPolicy: command.data.passwordPolicy ?? DEFAULT_PASSWORD_POLICY,
              mfaRequired: command.data.mfaRequired ?? false,
            },
          },
        ];
      case 'ChangePasswordPolicy':
        if (!state.exists) throw missing();
        return [{ type: 'auth.tenant.password-policy-changed', data: command.data }];
      case 'SetMfaRequirement':
        if (!state.exists) throw missing();
        if (state.mfaRequired === command.data.mfaRequired) return [];
        return [{ type: 'auth.tenant.mfa-requirement-changed', data: command.data }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'auth.tenant.created':
        return { exists: true, name: event.data.name, passwordPolicy: event.data.passwordPolicy, mfaRequired: event.data.mfaRequired };
      case 'auth.tenant.password-policy-changed':
        return { ...state, passwordPolicy: event.data.passwordPolicy };
      case 'auth.tenant.mfa-requirement-changed':
        return { ...state, mfaRequired: event.data.mfaRequired };
    }
  },
};

const CLASSES = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/];

/** What is wrong with a new password under a policy (history is checked by the caller, who holds the hashes). */
export function passwordProblems(password: string, policy: PasswordPolicy): string[] {
  const problems: string[] = [];
  if ([...password].length < policy.minLength) problems.push(`must be at least ${policy.minLength} characters`);
  const classes = CLASSES.filter((c) => c.test(password)).length;
  if (classes < policy.minClasses) problems.push(`must mix at least ${policy.minClasses} of: lower case, upper case, digits, symbols`);
  return problems;
}
