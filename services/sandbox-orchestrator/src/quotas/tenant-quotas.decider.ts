import { isDeepStrictEqual } from 'node:util';
import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { TenantQuotas, TenantQuotasEvent } from './tenant-quotas.events';

export interface TenantQuotasState {
  status: 'none' | 'set' | 'removed';
  quotas?: TenantQuotas;
}

/** `platform`: the platform's quotas, the most a tenant may set (not recorded: the environment's at the time). */
export type TenantQuotasCommand = Command<'set', { quotas: TenantQuotas; platform: TenantQuotas }> | Command<'remove', Record<string, never>>;

/**
 * A tenant's quotas (who may change them is the service's check, before): each at most
 * the platform's, so a tenant narrows its own use and never widens it. Setting the same
 * quotas again changes nothing; removing needs a setting.
 */
export const tenantQuotasDecider: Decider<TenantQuotasState, TenantQuotasCommand, TenantQuotasEvent> = {
  initialState: () => ({ status: 'none' }),

  decide(command, state) {
    if (command.type === 'remove') {
      if (state.status !== 'set') throw new PalisadeError('not_found', 'the tenant has no quotas of its own');
      return [{ type: 'sandbox-orchestrator.tenant_quotas.removed', data: {} }];
    }
    const { quotas, platform } = command.data;
    for (const name of ['maxSandboxes', 'cpuSeconds'] as const) {
      if (quotas[name] > platform[name]) throw new PalisadeError('validation', `${name}: at most the platform's ${platform[name]}`);
    }
    if (state.status === 'set' && isDeepStrictEqual(state.quotas, quotas)) return [];
    return [{ type: 'sandbox-orchestrator.tenant_quotas.set', data: { maxSandboxes: quotas.maxSandboxes, cpuSeconds: quotas.cpuSeconds } }];
  },

  evolve(state, event) {
    switch (event.type) {
      case 'sandbox-orchestrator.tenant_quotas.set':
        return { status: 'set', quotas: event.data };
      case 'sandbox-orchestrator.tenant_quotas.removed':
        return { ...state, status: 'removed', quotas: undefined };
    }
  },
};
