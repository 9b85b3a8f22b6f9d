import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { IdentityProviderEvent, IdentityProviderType, ProviderSettings } from './identity-providers.events';

export interface IdentityProviderState {
  exists: boolean;
  type?: IdentityProviderType;
  hasSecret: boolean;
}

export type IdentityProviderCommand =
  | Command<'ConfigureProvider', { providerId: string; enabled: boolean; settings: ProviderSettings; secretProvided: boolean }>
  | Command<'RemoveProvider', { providerId: string }>;

/** Which provider types cannot work without a secret. */
const SECRET_REQUIRED: Record<IdentityProviderType, boolean> = { ldap: true, oidc: true, saml: false };

export const identityProviderDecider: Decider<IdentityProviderState, IdentityProviderCommand, IdentityProviderEvent> = {
  initialState: () => ({ exists: false, hasSecret: false }),

  decide(command, state) {
    if (command.type === 'RemoveProvider') {
      if (!state.exists) throw new PalisadeError('not_found', 'identity provider not found');
      return [{ type: 'auth.identity-provider.removed', data: command.data }];
    }
    const { settings, secretProvided } = command.data;
    if (state.exists && state.type !== settings.type) throw new PalisadeError('conflict', `provider is of type ${state.type}: remove it to change the type`);
    if (SECRET_REQUIRED[settings.type] && !secretProvided && !state.hasSecret) throw new PalisadeError('validation', `secret: required for a ${settings.type} provider`);
    return [{ type: 'auth.identity-provider.configured', data: { providerId: command.data.providerId, enabled: command.data.enabled, settings, secretChanged: secretProvided } }];
  },

  evolve(state, event) {
    if (event.type === 'auth.identity-provider.removed') return { exists: false, hasSecret: false };
    return { exists: true, type: event.data.settings.type, hasSecret: state.hasSecret || event.data.secretChanged };
  },
};
