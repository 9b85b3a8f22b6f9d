/** The prices context's published language: price tables per tenant (or `*`, the platform default), versioned. */

/** Metered kinds; integers only (tokens, milliseconds, MB·milliseconds) so every price is exact. */
export const KINDS = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cpu_ms', 'memory_mb_ms', 'wall_ms'] as const;
export type Kind = (typeof KINDS)[number];

export type PriceEntry = {
  provider: string;
  model: string;
  kind: Kind;
  /** µ-units of the currency per 1,000,000 units of the kind (e.g. $3 per 1M tokens = "3000000"). */
  microsPerMillion: string;
  /** Long-context tier: applies when the request's input tokens exceed this (the highest tier that applies wins). */
  aboveInputTokens?: number;
};

export type PriceTablePublished = {
  type: 'billing.price-table.published';
  data: { scope: string; version: number; effectiveFrom: string; currency: string; entries: PriceEntry[] };
};

export type PriceEvent = PriceTablePublished;
