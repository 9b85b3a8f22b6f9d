import type { Command, Decider } from '@palisade/eventsourcing';
import { DEFAULT_GUARD_POLICY, type GuardPolicy, type GuardPolicyEvent } from './guard-policy.events';

export interface GuardPolicyState {
  policy: GuardPolicy;
}

export type GuardPolicyCommand = Command<'configure-guard-policy', GuardPolicy>;

/** A tenant's guard policy: configuring replaces it whole; the same policy again changes nothing. */
export const guardPolicyDecider: Decider<GuardPolicyState, GuardPolicyCommand, GuardPolicyEvent> = {
  initialState: () => ({ policy: DEFAULT_GUARD_POLICY }),
  decide(command, state) {
    if (JSON.stringify(command.data) === JSON.stringify(state.policy)) return [];
    return [{ type: 'llm-router.guard-policy.configured', data: command.data }];
  },
  evolve: (_state, event) => ({ policy: event.data }),
};
