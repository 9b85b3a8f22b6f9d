import { env, loadConfig } from '@palisade/config';
import { z } from 'zod';
import { CLASSIFICATIONS, type Classification } from './completions/routing';

/** The llm-router's own settings (besides every service's, in @palisade/service-kit). */
export interface LlmRouterConfig {
  /** Past this, a billing reservation is a refusal (503, fail-closed): LLM_ROUTER_BILLING_TIMEOUT_MS. */
  billingTimeoutMs: number;
  /** Past this, PII detection is a failure and the request is refused: LLM_ROUTER_PII_DEADLINE_MS. */
  piiDeadlineMs: number;
  /** Waiting for a provider's response headers, per attempt: LLM_ROUTER_PROVIDER_CONNECT_TIMEOUT_MS. */
  providerConnectTimeoutMs: number;
  /** A request's hard deadline (all attempts and the stream); billing may expire the hold after it: LLM_ROUTER_REQUEST_DEADLINE_MS. */
  requestDeadlineMs: number;
  /** `max_tokens` when the caller sets none: LLM_ROUTER_DEFAULT_MAX_TOKENS. */
  defaultMaxTokens: number;
  /** The class of a request that declares none: LLM_ROUTER_DEFAULT_CLASSIFICATION. */
  defaultClassification: Classification;
  /** How long a tenant's catalog is cached per instance: LLM_ROUTER_CATALOG_CACHE_MS. */
  catalogCacheMs: number;
  /** Region for phone numbers written without +country: LLM_ROUTER_PHONE_REGION. */
  phoneRegion: string;
  /** How long a provider key read from the vault stays in memory (0: read, and audited, on every call): LLM_ROUTER_PROVIDER_KEY_CACHE_MS. */
  providerKeyCacheMs: number;
  /** Past this, the vault has not answered (the call is refused, 503): LLM_ROUTER_VAULT_TIMEOUT_MS. */
  vaultTimeoutMs: number;
  /** How long an answer held for review waits for its release: LLM_ROUTER_HELD_ANSWER_TTL_MS. */
  heldAnswerTtlMs: number;
  /** How often held answers past their time are expired (text deleted, event written): LLM_ROUTER_HELD_SWEEP_MS. */
  heldSweepMs: number;
  /** How long a settle request waits for others to leave with it (settle-batcher.ts): LLM_ROUTER_SETTLE_LINGER_MS. */
  settleLingerMs: number;
  /** The shortest time between two wake-ups of the outbox relay after commits (EventsAppendedRinger): LLM_ROUTER_EVENTS_RING_GAP_MS. */
  eventsRingGapMs: number;
  /**
   * Budget allotments (budgets/allotting-billing.ts): an allotment asks this many times a request's worst
   * case, and the scope's following requests are reserved from it in memory; 0 or 1: none, every request
   * reserves with billing (a hop on the answer's path): LLM_ROUTER_ALLOTMENT_MULTIPLE.
   */
  allotmentMultiple: number;
  /** How long an allotment outlives the deadline of the request that asked for it (it serves new requests for two thirds of this): LLM_ROUTER_ALLOTMENT_TTL_MS. */
  allotmentTtlMs: number;
  /** An allotment with nothing in flight that served nothing for this long is returned: LLM_ROUTER_ALLOTMENT_IDLE_MS. */
  allotmentIdleMs: number;
  /** The next allotment is asked ahead once a request leaves the current one room for fewer than this many of its worst case (0: when one does not fit): LLM_ROUTER_ALLOTMENT_REFILL_BELOW. */
  allotmentRefillBelow: number;
}

/** Validated at start, naming the bad variable. */
export function loadLlmRouterConfig(source: NodeJS.ProcessEnv = process.env): LlmRouterConfig {
  const c = loadConfig(
    {
      LLM_ROUTER_BILLING_TIMEOUT_MS: env.int(2000, 50, 30_000),
      LLM_ROUTER_PII_DEADLINE_MS: env.int(250, 5, 10_000),
      LLM_ROUTER_PROVIDER_CONNECT_TIMEOUT_MS: env.int(30_000, 100, 600_000),
      LLM_ROUTER_REQUEST_DEADLINE_MS: env.int(600_000, 1000, 3_600_000),
      LLM_ROUTER_DEFAULT_MAX_TOKENS: env.int(1024, 1, 1_000_000),
      LLM_ROUTER_DEFAULT_CLASSIFICATION: z.enum(CLASSIFICATIONS as [Classification, ...Classification[]]).default('internal'),
      LLM_ROUTER_CATALOG_CACHE_MS: env.int(1000, 0, 60_000),
      LLM_ROUTER_PHONE_REGION: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166 alpha-2 region such as US').default('US'),
      LLM_ROUTER_PROVIDER_KEY_CACHE_MS: env.int(60_000, 0, 3_600_000),
      LLM_ROUTER_VAULT_TIMEOUT_MS: env.int(3000, 50, 30_000),
      LLM_ROUTER_HELD_ANSWER_TTL_MS: env.int(86_400_000, 1000, 7 * 86_400_000),
      LLM_ROUTER_HELD_SWEEP_MS: env.int(60_000, 100, 3_600_000),
      // off the answer's path (the hold covers the call; the usage event is the durable settlement)
      LLM_ROUTER_SETTLE_LINGER_MS: env.int(20, 0, 1000),
      // every call commits: one ring (a round trip) and one relay cycle (three) per call one at a time with the platform's 5 ms
      LLM_ROUTER_EVENTS_RING_GAP_MS: env.int(25, 1, 1000),
      // the reservation's hop off the answer's path for all but one request of a scope in this many
      LLM_ROUTER_ALLOTMENT_MULTIPLE: env.int(8, 0, 64),
      LLM_ROUTER_ALLOTMENT_TTL_MS: env.int(30_000, 3000, 600_000),
      LLM_ROUTER_ALLOTMENT_IDLE_MS: env.int(1000, 10, 60_000),
      // one request in ~30 (one at a time) waited for the next allotment's round trip: asked ahead instead
      LLM_ROUTER_ALLOTMENT_REFILL_BELOW: env.int(2, 0, 64),
    },
    source,
  );
  return {
    billingTimeoutMs: c.LLM_ROUTER_BILLING_TIMEOUT_MS,
    piiDeadlineMs: c.LLM_ROUTER_PII_DEADLINE_MS,
    providerConnectTimeoutMs: c.LLM_ROUTER_PROVIDER_CONNECT_TIMEOUT_MS,
    requestDeadlineMs: c.LLM_ROUTER_REQUEST_DEADLINE_MS,
    defaultMaxTokens: c.LLM_ROUTER_DEFAULT_MAX_TOKENS,
    defaultClassification: c.LLM_ROUTER_DEFAULT_CLASSIFICATION,
    catalogCacheMs: c.LLM_ROUTER_CATALOG_CACHE_MS,
    phoneRegion: c.LLM_ROUTER_PHONE_REGION,
    providerKeyCacheMs: c.LLM_ROUTER_PROVIDER_KEY_CACHE_MS,
    vaultTimeoutMs: c.LLM_ROUTER_VAULT_TIMEOUT_MS,
    heldAnswerTtlMs: c.LLM_ROUTER_HELD_ANSWER_TTL_MS,
    heldSweepMs: c.LLM_ROUTER_HELD_SWEEP_MS,
    settleLingerMs: c.LLM_ROUTER_SETTLE_LINGER_MS,
    eventsRingGapMs: c.LLM_ROUTER_EVENTS_RING_GAP_MS,
    allotmentMultiple: c.LLM_ROUTER_ALLOTMENT_MULTIPLE,
    allotmentTtlMs: c.LLM_ROUTER_ALLOTMENT_TTL_MS,
    allotmentIdleMs: c.LLM_ROUTER_ALLOTMENT_IDLE_MS,
    allotmentRefillBelow: c.LLM_ROUTER_ALLOTMENT_REFILL_BELOW,
  };
}
