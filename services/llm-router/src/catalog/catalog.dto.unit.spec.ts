import { MAX_EVENT_BYTES } from '@palisade/contracts';
import { MAX_NAMED_LIMITS, providerSchema, routeSchema, settingsSchema } from './catalog.dto';

const provider = (baseUrl: string) => ({ kind: 'openai', baseUrl, compliance: 'private' });

describe('providerSchema', () => {
  it('takes an http(s) base URL', () => {
    expect(providerSchema.safeParse(provider('https://llm.internal:8443/v1')).success).toBe(true);
  });

  it.each([
    ['too long', `https://a.example/${'x'.repeat(20_000)}`],
    ['not a URL', 'not a url'],
    ['credentials', 'https://user:pw@llm.internal/v1'],
    ['a query', 'https://llm.internal/v1?key=1'],
    ['another scheme', 'ftp://llm.internal/v1'],
  ])('refuses a base URL with %s as invalid input, never by throwing', (_why, baseUrl) => {
    expect(() => providerSchema.safeParse(provider(baseUrl))).not.toThrow();
    expect(providerSchema.safeParse(provider(baseUrl)).success).toBe(false);
  });
});

describe('routeSchema', () => {
  it('takes one weight per candidate, at least one above 0', () => {
    expect(routeSchema.safeParse({ candidates: ['a', 'b'], weights: [3, 0] }).success).toBe(true);
    expect(routeSchema.safeParse({ candidates: ['a', 'b'] }).success).toBe(true);
    for (const weights of [[1], [0, 0], [1, -1], [1.5, 1]]) expect(routeSchema.safeParse({ candidates: ['a', 'b'], weights }).success).toBe(false);
  });
});

describe('settingsSchema', () => {
  const withLimits = (rateLimits: unknown) => settingsSchema.safeParse({ zeroRetention: false, rateLimits });

  it('takes per-agent and per-key defaults and named agents (a person as user:<id>) and keys', () => {
    const rateLimits = { perAgent: { requestsPerMinute: 10 }, agents: { '3f1c2b9e-0d4a-4c55-9a7e-1b2c3d4e5f60': { tokensPerMinute: 1000 }, 'user:alice': {} }, keys: { k9: { requestsPerMinute: 2 } } };
    expect(withLimits(rateLimits)).toMatchObject({ success: true, data: { rateLimits } });
  });

  it.each([
    ['an agent id that is not one', { agents: { 'bot one': {} } }],
    ['another prefix than user:', { agents: { 'team:x': {} } }],
    ['an id starting with another sign', { agents: { _bot: {} } }],
    ['an unknown limit', { agents: { bot: { requestsPerHour: 5 } } }],
    ['a limit below 1', { keys: { k9: { requestsPerMinute: 0 } } }],
    ['a key id that is not one', { keys: { '../k9': {} } }],
    ['an unknown member', { teams: {} }],
  ])('refuses %s as invalid input', (_why, rateLimits: object) => {
    expect(withLimits(rateLimits).success).toBe(false);
  });

  it('keeps nothing of a __proto__ entry (as a parsed JSON body holds it), and no prototype changed', () => {
    const parsed = withLimits(JSON.parse('{"agents": {"__proto__": {"requestsPerMinute": 5}, "bot": {}}}'));
    expect(parsed.success).toBe(true);
    const agents = parsed.data!.rateLimits!.agents!;
    expect(Object.keys(agents)).toEqual(['bot']);
    expect(Object.getPrototypeOf(agents)).toBe(Object.prototype);
  });

  it(`names at most ${MAX_NAMED_LIMITS} agents`, () => {
    const agents = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`bot-${i}`, { requestsPerMinute: 1 }]));
    expect(withLimits({ agents: agents(MAX_NAMED_LIMITS) }).success).toBe(true);
    const over = withLimits({ agents: agents(MAX_NAMED_LIMITS + 1) });
    expect(over.success).toBe(false);
    expect(over.error?.issues[0].message).toBe(`at most ${MAX_NAMED_LIMITS} agents`);
  });

  it('keeps the largest settings it takes well within one event', () => {
    const most = { requestsPerMinute: 1_000_000, tokensPerMinute: 10_000_000_000 };
    const longest = (prefix: string, i: number) => `${prefix}${String(i).padStart(128, 'a')}`;
    const agents = Object.fromEntries(Array.from({ length: MAX_NAMED_LIMITS }, (_, i) => [longest('user:', i), most]));
    const keys = Object.fromEntries(Array.from({ length: MAX_NAMED_LIMITS }, (_, i) => [longest('', i), most]));
    const parsed = withLimits({ perAgent: most, perKey: most, agents, keys });
    expect(parsed.success).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(parsed.data))).toBeLessThan(MAX_EVENT_BYTES * 0.8);
  });
});
