import type { DomainEvent } from '@palisade/eventsourcing';
import type { GuardOutcomes } from '../guards/guard-pipeline';

export type ModelCallOutcome = 'served' | 'refused' | 'failed' | 'cut';

/**
 * One model call (stream `model-call-<requestId>`, one event): who asked (the agent and
 * the user it acts for, by id), where it went, how it was classified and guarded, what
 * it cost. No text and no detected value is in `data`: the prompt and the response are in
 * `personal` (erasable per data subject), masking is counted per entity type.
 */
export type ModelCallRecorded = {
  requestId: string;
  api: 'openai' | 'anthropic';
  /** A chat call (OpenAI's chat completions, Anthropic's messages) or embeddings (OpenAI's: no answer text). Events written before it was added lack it. */
  operation: 'chat' | 'embeddings';
  agentId?: string;
  userId?: string;
  teams: string[];
  requestedModel: string;
  providerId?: string;
  model?: string;
  classification: string;
  outcome: ModelCallOutcome;
  /** Coded reason of a refusal or failure (e.g. `budget:agent`, `compliance`, `pii-detector`, `providers-failed`). */
  reason?: string;
  streamed: boolean;
  attempts: number;
  inputTokens: number;
  outputTokens: number;
  reservedMicros: number;
  costMicros: number;
  estimated: boolean;
  latencyMs: number;
  /** PII counts per entity type (masked, allowed, blocked), injection findings (rule ids), tools removed (names): never a value. */
  guards: GuardOutcomes;
};

/**
 * The settlement of a call's hold as an event (stream `usage-<requestId>`, one event):
 * billing's metering consumer settles the hold from it exactly once, so a call is
 * charged even when the settlement request was lost. Billing's schema
 * (services/billing/src/metering/metering.dto.ts): micro-USD as a decimal string.
 */
export type UsageRecorded = {
  requestId: string;
  agentId: string;
  /** The budget allotment the call was served from: billing settles against it, as the settle request does. */
  allotmentId?: string;
  actualMicros: string;
  model: string;
  usage: Array<{ kind: string; quantity: number }>;
};

export type ModelCallEvent = DomainEvent<'llm-router.model-call.recorded', ModelCallRecorded> | DomainEvent<'llm-router.usage.recorded', UsageRecorded>;
export const MODEL_CALL_EVENT_TYPES: readonly ModelCallEvent['type'][] = ['llm-router.model-call.recorded', 'llm-router.usage.recorded'];
