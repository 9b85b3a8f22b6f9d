import { isDeepStrictEqual } from 'node:util';
import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { EgressRulesEvent } from './egress-rules.events';
import type { EgressRule } from './egress.rules';

export interface EgressRulesState {
  status: 'none' | 'set' | 'removed';
  scope?: string;
  rules: readonly EgressRule[];
}

export type EgressRulesCommand = Command<'set', { scope: string; rules: EgressRule[] }> | Command<'remove', Record<string, never>>;

/** What only the tenant's own rule set may name: a narrower scope narrows, it adds no address, CA or credential. */
const TENANT_ONLY = ['addresses', 'upstreamCaPem', 'inject'] as const;

/**
 * A rule set's own rules (who may change it is the service's check, before): the tenant's
 * rule set says where and with which credentials; an agent's or a session's only narrows
 * it, so it names no address, CA or secret. Setting the same rules again changes nothing.
 */
export const egressRulesDecider: Decider<EgressRulesState, EgressRulesCommand, EgressRulesEvent> = {
  initialState: () => ({ status: 'none', rules: [] }),

  decide(command, state) {
    if (command.type === 'remove') {
      if (state.status !== 'set') throw new PalisadeError('not_found', 'egress rule set not found');
      return [{ type: 'sandbox-orchestrator.egress_rules.removed', data: { scope: state.scope! } }];
    }
    const { scope, rules } = command.data;
    if (scope !== 'tenant') {
      rules.forEach((rule, i) => {
        const field = TENANT_ONLY.find((f) => rule[f] !== undefined);
        if (field) throw new PalisadeError('validation', `rules.${i}.${field}: only the tenant's rule set names ${field}; an agent's or a session's narrows it`);
      });
    }
    if (state.status === 'set' && isDeepStrictEqual(state.rules, rules)) return [];
    return [{ type: 'sandbox-orchestrator.egress_rules.set', data: { scope, rules } }];
  },

  evolve(state, event) {
    switch (event.type) {
      case 'sandbox-orchestrator.egress_rules.set':
        return { status: 'set', scope: event.data.scope, rules: event.data.rules };
      case 'sandbox-orchestrator.egress_rules.removed':
        return { ...state, status: 'removed', rules: [] };
    }
  },
};
