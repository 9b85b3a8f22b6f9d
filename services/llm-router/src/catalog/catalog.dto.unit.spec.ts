import { providerSchema, routeSchema } from './catalog.dto';

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
