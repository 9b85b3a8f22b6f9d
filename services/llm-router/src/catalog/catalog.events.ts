import type { DomainEvent } from '@palisade/eventsourcing';
import type { RateLimitSettings } from '../budgets/rate-limits';

/** How the router speaks to a provider. `openai` covers every OpenAI-compatible server (vLLM, Ollama, DeepSeek, Qwen, GLM…). */
export type ProviderKind = 'openai' | 'anthropic';
export const PROVIDER_KINDS: readonly ProviderKind[] = ['openai', 'anthropic'];

/** `private`: runs inside the customer's perimeter (may receive every class); `external`: a third party (public and internal only). */
export type ComplianceClass = 'private' | 'external';
export const COMPLIANCE_CLASSES: readonly ComplianceClass[] = ['private', 'external'];

export type ProviderDefinition = {
  providerId: string;
  kind: ProviderKind;
  baseUrl: string;
  compliance: ComplianceClass;
  /** The credential service's secret holding the provider's API key (a reference, never the key). */
  apiKeySecretId?: string;
};

/** What a request may need of a model beyond text: tool definitions and calls, images (also in tool results). */
export type Capability = 'tools' | 'images';
export const CAPABILITIES: readonly Capability[] = ['tools', 'images'];

export type ModelDefinition = {
  /** The name callers use (`model` in a request). */
  modelId: string;
  providerId: string;
  /** The provider's own model name. */
  upstreamModel: string;
  contextWindow: number;
  maxOutputTokens: number;
  /** Prices in micro-USD per million tokens (integers: money is never a float). */
  inputMicrosPerMTok: number;
  outputMicrosPerMTok: number;
  /** What the model can do besides text; absent: not declared (taken as able, as before models declared it). */
  capabilities?: Capability[];
};

export type RouteDefinition = {
  /** The name callers use (`model` in a request), tried before model ids. */
  routeId: string;
  /** Model ids in order of preference: the first permitted one is tried first, the rest are fallbacks. */
  candidates: string[];
  /**
   * Traffic shares, one per candidate (integers, 0 = only as a fallback): the first
   * candidate of a call is drawn by weight among those permitted and able, the others
   * follow in order as fallbacks. Absent: always the first permitted.
   */
  weights?: number[];
};

/** The tenant's router settings. */
export type RouterSettings = {
  /** No prompt or response text is kept anywhere (audit events carry no `personal`). */
  zeroRetention: boolean;
  /** Requests and tokens per minute for each agent and each API key, shared by the router's instances; absent: none. */
  rateLimits?: RateLimitSettings;
};

/**
 * A tenant's model catalog (stream `llm-catalog-<tenant>`): providers, models and
 * routes. No event holds a key or personal data.
 */
export type CatalogEvent =
  | DomainEvent<'llm-router.provider.registered', ProviderDefinition>
  | DomainEvent<'llm-router.provider.removed', { providerId: string }>
  | DomainEvent<'llm-router.model.registered', ModelDefinition>
  | DomainEvent<'llm-router.model.removed', { modelId: string }>
  | DomainEvent<'llm-router.route.configured', RouteDefinition>
  | DomainEvent<'llm-router.route.removed', { routeId: string }>
  | DomainEvent<'llm-router.settings.configured', RouterSettings>;

export type CatalogEventType = CatalogEvent['type'];

export const CATALOG_EVENT_TYPES: readonly CatalogEventType[] = [
  'llm-router.provider.registered',
  'llm-router.provider.removed',
  'llm-router.model.registered',
  'llm-router.model.removed',
  'llm-router.route.configured',
  'llm-router.route.removed',
  'llm-router.settings.configured',
];
