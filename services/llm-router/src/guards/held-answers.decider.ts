import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { AnswerHeld, HeldAnswerEvent } from './held-answers.events';

export type HeldAnswerStatus = 'none' | 'held' | 'released' | 'expired';

export interface HeldAnswerState {
  status: HeldAnswerStatus;
  held?: AnswerHeld['data'];
}

export type Caller = { type: string; id: string };

export type HeldAnswerCommand =
  | Command<'hold', Omit<AnswerHeld['data'], 'expiresAt'> & { ttlMs: number }>
  /** Decided after the policy service redeemed an approval of this release (`approvalId`), asked by `caller`. */
  | Command<'release', { caller: Caller; approvalId: string }>
  | Command<'expire', Record<string, never>>;

const notFound = (why = 'held answer not found') => new PalisadeError('not_found', why);

/**
 * Whether `caller` may still have the held answer at `now`: only the caller that asked
 * (another caller, of this tenant or another, gets not found), once, before it expires.
 * Also checked before the policy service is asked, so an approval is not spent in vain.
 */
export function assertReleasable(state: HeldAnswerState, caller: Caller, now: Date): void {
  const held = state.held;
  if (state.status === 'none' || !held || held.owner.type !== caller.type || held.owner.id !== caller.id) throw notFound();
  if (state.status === 'released') throw notFound('the held answer was released already');
  if (state.status === 'expired' || isExpired(state, now)) throw notFound('the held answer has expired');
}

export function isExpired(state: HeldAnswerState, now: Date): boolean {
  return state.status === 'held' && Date.parse(state.held!.expiresAt) <= now.getTime();
}

/** A model's answer held for review: held once, then released once (after an approval) or expired. */
export const heldAnswerDecider: Decider<HeldAnswerState, HeldAnswerCommand, HeldAnswerEvent> = {
  initialState: () => ({ status: 'none' }),
  decide(command, state) {
    const now = command.metadata.now;
    switch (command.type) {
      case 'hold': {
        if (state.status !== 'none') throw new PalisadeError('conflict', 'the answer is held already');
        if (command.data.tools.length === 0) throw new PalisadeError('validation', 'tools: an answer is held for the calls of reviewed tools only');
        const { ttlMs, ...data } = command.data;
        return [{ type: 'llm-router.answer.held', data: { ...data, expiresAt: new Date(now.getTime() + ttlMs).toISOString() } }];
      }
      case 'release':
        assertReleasable(state, command.data.caller, now);
        return [{ type: 'llm-router.answer.released', data: { heldId: state.held!.heldId, approvalId: command.data.approvalId } }];
      case 'expire':
        return isExpired(state, now) ? [{ type: 'llm-router.answer.expired', data: { heldId: state.held!.heldId } }] : [];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'llm-router.answer.held':
        return { status: 'held', held: event.data };
      case 'llm-router.answer.released':
        return { ...state, status: 'released' };
      case 'llm-router.answer.expired':
        return { ...state, status: 'expired' };
    }
  },
};
