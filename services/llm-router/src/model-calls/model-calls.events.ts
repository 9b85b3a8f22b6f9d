import type { DomainEvent } from '@palisade/eventsourcing';
import type { MaskStatistics } from '../guards/pii.masker';

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
  guards: { pii: { masked: number; byType: MaskStatistics } };
};

export type ModelCallEvent = DomainEvent<'llm-router.model-call.recorded', ModelCallRecorded>;
export const MODEL_CALL_EVENT_TYPES: readonly ModelCallEvent['type'][] = ['llm-router.model-call.recorded'];
