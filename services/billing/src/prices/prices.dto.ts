import { z } from 'zod';
import { TENANT_ID } from '@palisade/contracts';
import { KINDS } from './prices.events';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$/, 'must be 1-128 letters, digits or _.:/@-');

/** `PUT /v1/price-tables` (the tenant's) and `PUT /v1/price-tables/platform`: a new version, effective from a date (default now). */
export const publishPriceTableSchema = z.strictObject({
  effectiveFrom: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 instant').optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code, e.g. USD'),
  entries: z
    .array(
      z.strictObject({
        provider: name,
        model: name,
        kind: z.enum(KINDS),
        microsPerMillion: z.string().regex(/^\d{1,15}$/, 'must be a whole number of µ-units per million units, as a decimal string'),
        aboveInputTokens: z.number().int().min(1).max(100_000_000).optional(),
      }),
    )
    .min(1)
    .max(2000),
});

/** `palisade.rpc.billing.quote`: what a usage costs now (the router holds the worst case: input bound + max_tokens). */
export const quoteSchema = z.strictObject({
  tenantId: z.string().regex(TENANT_ID, 'must be a tenant id'),
  provider: name,
  model: name,
  usage: z.array(z.strictObject({ kind: z.enum(KINDS), quantity: z.number().int().min(0).max(1e12) })).min(1).max(16),
});
