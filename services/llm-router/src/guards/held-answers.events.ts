import type { DomainEvent } from '@palisade/eventsourcing';

/** What the caller asks the policy service for (`POST /v1/approvals`), exactly, to have a held answer released. */
export interface ReleaseApproval {
  action: typeof RELEASE_ACTION;
  resource: { type: typeof HELD_ANSWER_RESOURCE; id: string };
  /** The reviewed tools the answer calls and a SHA-256 of their calls (names and arguments): the approver sees what is asked, never the arguments. */
  parameters: { tools: string[]; callsSha256: string };
  service: 'llm-router';
}

/** The policy service's action and resource type of a release (the tenant makes `llm.release` a critical action). */
export const RELEASE_ACTION = 'llm.release';
export const HELD_ANSWER_RESOURCE = 'llm-answer';

/**
 * A model's answer held for review (stream `llm-held-<tenant>.<heldId>`): who may fetch
 * it (the caller that asked), until when, which reviewed tools it calls. No text here:
 * the answer itself is in the `held_answers` table, deleted at release or expiry.
 */
export type AnswerHeld = DomainEvent<
  'llm-router.answer.held',
  {
    heldId: string;
    requestId: string;
    api: 'openai' | 'anthropic';
    owner: { type: 'agent' | 'user'; id: string; actingFor?: string };
    tools: string[];
    callsSha256: string;
    expiresAt: string;
  }
>;
export type AnswerReleased = DomainEvent<'llm-router.answer.released', { heldId: string; approvalId: string }>;
export type AnswerExpired = DomainEvent<'llm-router.answer.expired', { heldId: string }>;

export type HeldAnswerEvent = AnswerHeld | AnswerReleased | AnswerExpired;
export const HELD_ANSWER_EVENT_TYPES: readonly HeldAnswerEvent['type'][] = ['llm-router.answer.held', 'llm-router.answer.released', 'llm-router.answer.expired'];
