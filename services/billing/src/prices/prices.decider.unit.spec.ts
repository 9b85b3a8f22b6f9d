import { DeciderSpecification } from '@palisade/eventsourcing';
import { costOf, pricesDecider, type PublishPriceTable } from './prices.decider';
import type { PriceEntry } from './prices.events';

const entries: PriceEntry[] = [
  { provider: 'openai', model: 'gpt-x', kind: 'input_tokens', microsPerMillion: '3000000' },
  { provider: 'openai', model: 'gpt-x', kind: 'input_tokens', microsPerMillion: '6000000', aboveInputTokens: 200_000 },
  { provider: 'openai', model: 'gpt-x', kind: 'output_tokens', microsPerMillion: '15000000' },
];
const usage = (input: number, output: number) => ({ provider: 'openai', model: 'gpt-x', quantities: [{ kind: 'input_tokens' as const, quantity: input }, { kind: 'output_tokens' as const, quantity: output }] });

describe('prices', () => {
  it('costs in integers, rounding up once per request (not per line)', () => {
    // 1 input token = 3 µ; 1 output token = 15 µ: exact
    expect(costOf({ entries }, usage(1, 1))).toBe(18n);
    // 0.3 µ + 0.15 µ... per line would round to 1 + 1 = 2; once per request: ceil(0.45) = 1
    expect(costOf({ entries: [{ ...entries[0], microsPerMillion: '300000' }, { ...entries[2], microsPerMillion: '150000' }] }, usage(1, 1))).toBe(1n);
    expect(costOf({ entries }, usage(0, 0))).toBe(0n);
  });
  it('takes the long-context tier once the input passes it', () => {
    expect(costOf({ entries }, usage(200_000, 0))).toBe(600_000n);
    expect(costOf({ entries }, usage(200_001, 0))).toBe(1_200_006n);
  });
  it('refuses an unpriced kind rather than charging nothing', () => {
    expect(() => costOf({ entries }, { provider: 'openai', model: 'other', quantities: [{ kind: 'input_tokens', quantity: 1 }] })).toThrow('no price');
  });
  it('each publication is the next version; a duplicate entry is refused', () => {
    const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-03T10:00:00.000Z') };
    const cmd = (e: PriceEntry[]): PublishPriceTable => ({ type: 'publish', data: { scope: 'acme', effectiveFrom: '2026-12-03T10:00:00.000Z', currency: 'EUR', entries: e }, metadata });
    const spec = DeciderSpecification.for(pricesDecider);
    const first = pricesDecider.decide(cmd(entries), pricesDecider.initialState())[0];
    expect(first.data.version).toBe(1);
    spec([first]).when(cmd(entries)).then([{ type: 'billing.price-table.published', data: { ...first.data, version: 2 } }]);
    spec([]).when(cmd([entries[0], entries[0]])).thenThrows('validation', 'priced twice');
  });
});
