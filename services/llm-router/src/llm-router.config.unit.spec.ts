import { ConfigError } from '@palisade/config';
import { loadLlmRouterConfig } from './llm-router.config';

describe('loadLlmRouterConfig: the batching of off-path work', () => {
  it('lingers settle requests 20 ms and wakes the outbox relay at most every 25 ms unless told otherwise', () => {
    expect(loadLlmRouterConfig({})).toMatchObject({ settleLingerMs: 20, eventsRingGapMs: 25 });
    expect(loadLlmRouterConfig({ LLM_ROUTER_SETTLE_LINGER_MS: '0', LLM_ROUTER_EVENTS_RING_GAP_MS: '5' })).toMatchObject({ settleLingerMs: 0, eventsRingGapMs: 5 });
  });

  it('refuses a linger or a gap past a second, naming the variable', () => {
    expect(() => loadLlmRouterConfig({ LLM_ROUTER_SETTLE_LINGER_MS: '5000' })).toThrow(/LLM_ROUTER_SETTLE_LINGER_MS/);
    expect(() => loadLlmRouterConfig({ LLM_ROUTER_EVENTS_RING_GAP_MS: '0' })).toThrow(ConfigError);
  });

  it('budget allotments: 8 × the worst case, 30 s beyond the deadline, returned after 1 s idle, the next asked below room for 2; 0 turns them off; out of range is refused by name', () => {
    expect(loadLlmRouterConfig({})).toMatchObject({ allotmentMultiple: 8, allotmentTtlMs: 30_000, allotmentIdleMs: 1000, allotmentRefillBelow: 2 });
    expect(loadLlmRouterConfig({ LLM_ROUTER_ALLOTMENT_REFILL_BELOW: '0' })).toMatchObject({ allotmentRefillBelow: 0 });
    expect(() => loadLlmRouterConfig({ LLM_ROUTER_ALLOTMENT_REFILL_BELOW: '-1' })).toThrow(/LLM_ROUTER_ALLOTMENT_REFILL_BELOW/);
    expect(loadLlmRouterConfig({ LLM_ROUTER_ALLOTMENT_MULTIPLE: '0' })).toMatchObject({ allotmentMultiple: 0 });
    expect(() => loadLlmRouterConfig({ LLM_ROUTER_ALLOTMENT_TTL_MS: '1000' })).toThrow(/LLM_ROUTER_ALLOTMENT_TTL_MS/);
    expect(() => loadLlmRouterConfig({ LLM_ROUTER_ALLOTMENT_MULTIPLE: '100' })).toThrow(/LLM_ROUTER_ALLOTMENT_MULTIPLE/);
  });
});
