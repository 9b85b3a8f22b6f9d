import { PalisadeError, type Personal } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { ModelCallEvent, ModelCallRecorded, UsageRecorded } from './model-calls.events';

export interface ModelCallState {
  recorded: boolean;
}

export type ModelCallCommand = Command<'record', { call: ModelCallRecorded; personal?: Personal }> | Command<'record-usage', UsageRecorded>;

/** A model call, and its usage, are each recorded once (the request id names their streams). */
export const modelCallDecider: Decider<ModelCallState, ModelCallCommand, ModelCallEvent> = {
  initialState: () => ({ recorded: false }),
  decide(command, state) {
    if (state.recorded) throw new PalisadeError('conflict', 'already recorded');
    if (command.type === 'record-usage') return [{ type: 'llm-router.usage.recorded', data: command.data }];
    const { call, personal } = command.data;
    return [{ type: 'llm-router.model-call.recorded', data: call, ...(personal ? { personal } : {}) }];
  },
  evolve: () => ({ recorded: true }),
};
