import { PalisadeError, type Personal } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { ModelCallEvent, ModelCallRecorded } from './model-calls.events';

export interface ModelCallState {
  recorded: boolean;
}

export type ModelCallCommand = Command<'record', { call: ModelCallRecorded; personal?: Personal }>;

/** A model call is recorded once (the request id is its stream). */
export const modelCallDecider: Decider<ModelCallState, ModelCallCommand, ModelCallEvent> = {
  initialState: () => ({ recorded: false }),
  decide(command, state) {
    if (state.recorded) throw new PalisadeError('conflict', 'model call already recorded');
    const { call, personal } = command.data;
    return [{ type: 'llm-router.model-call.recorded', data: call, ...(personal ? { personal } : {}) }];
  },
  evolve: () => ({ recorded: true }),
};
