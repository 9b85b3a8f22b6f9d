import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { Kind, PriceEntry, PriceEvent } from './prices.events';

export interface PriceTable {
  scope: string;
  version: number;
  effectiveFrom: Date;
  currency: string;
  entries: PriceEntry[];
}

export interface PricesState {
  version: number;
}

export type PublishPriceTable = Command<'publish', { scope: string; effectiveFrom: string; currency: string; entries: PriceEntry[] }>;

/** The price table aggregate (`price-table-<scope>`): each publication is the next version, effective from its date. */
export const pricesDecider: Decider<PricesState, PublishPriceTable, PriceEvent> = {
  initialState: () => ({ version: 0 }),
  decide(command, state) {
    const d = command.data;
    const seen = new Set<string>();
    for (const e of d.entries) {
      const key = `${e.provider}\u0000${e.model}\u0000${e.kind}\u0000${e.aboveInputTokens ?? 0}`;
      if (seen.has(key)) throw new PalisadeError('validation', `entries: ${e.provider}/${e.model} ${e.kind} is priced twice for the same tier`);
      seen.add(key);
    }
    return [{ type: 'billing.price-table.published', data: { ...d, version: state.version + 1 } }];
  },
  evolve: (_state, event) => ({ version: event.data.version }),
};

export interface Usage {
  provider: string;
  model: string;
  quantities: ReadonlyArray<{ kind: Kind; quantity: number }>;
}

/**
 * The cost of one request in µ-units: Σ quantity × price per million, in integers, divided
 * by a million once and rounded UP once (never per line, never in floating point). Each
 * kind takes the entry of the highest long-context tier that the request's input tokens
 * exceed. A kind without a price is refused (a request is never silently free).
 */
export function costOf(table: Pick<PriceTable, 'entries'>, usage: Usage): bigint {
  const input = usage.quantities.filter((q) => q.kind === 'input_tokens').reduce((s, q) => s + q.quantity, 0);
  let numerator = 0n;
  for (const q of usage.quantities) {
    if (!Number.isSafeInteger(q.quantity) || q.quantity < 0) throw new PalisadeError('validation', `usage: ${q.kind} must be a whole number`);
    if (q.quantity === 0) continue;
    const tiers = table.entries
      .filter((e) => e.provider === usage.provider && e.model === usage.model && e.kind === q.kind && (!e.aboveInputTokens || input > e.aboveInputTokens))
      .sort((a, b) => (b.aboveInputTokens ?? 0) - (a.aboveInputTokens ?? 0));
    if (tiers.length === 0) throw new PalisadeError('not_found', `no price for ${usage.provider}/${usage.model} ${q.kind}`);
    numerator += BigInt(q.quantity) * BigInt(tiers[0].microsPerMillion);
  }
  return (numerator + 999_999n) / 1_000_000n;
}
