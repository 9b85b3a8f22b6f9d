import { fuzzCases, fuzzProblems, MALFORMED_PARAMS } from './fuzz';

const doc = {
  paths: {
    '/health/ready': { get: {} },
    '/v1/tenants/{tenantId}/users/{userId}': { get: { parameters: [{ in: 'path', name: 'tenantId' }, { in: 'path', name: 'userId' }] } },
    '/v1/items': {
      get: { parameters: [{ in: 'query', name: 'cursor' }] },
      post: { requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { name: { type: 'string' }, size: { type: 'integer' } } } } } } },
    },
  },
};

describe('fuzzCases', () => {
  const cases = fuzzCases(doc, { known: { tenantId: 'demo' } });

  it('leaves health, metrics and docs out', () => {
    expect(cases.some((c) => c.path.startsWith('/health'))).toBe(false);
  });

  it('malforms each path parameter in turn, keeping the others known', () => {
    const userCases = cases.filter((c) => c.why.startsWith('path parameter userId'));
    expect(userCases).toHaveLength(MALFORMED_PARAMS.length);
    expect(userCases.every((c) => c.path.startsWith('/v1/tenants/demo/users/'))).toBe(true);
    expect(userCases.map((c) => c.path)).toContain('/v1/tenants/demo/users/%00');
    expect(cases.filter((c) => c.why.startsWith('path parameter tenantId')).every((c) => c.path.endsWith('/users/fuzz'))).toBe(true);
  });

  it('malforms declared query parameters, also given twice', () => {
    expect(cases.map((c) => c.path)).toEqual(expect.arrayContaining(['/v1/items?cursor=%00', '/v1/items?cursor=a&cursor=b']));
  });

  it('sends wrong member types and poisoned strings for each body member of the schema', () => {
    const post = cases.filter((c) => c.method === 'POST');
    expect(post.find((c) => c.why === 'body member size: wrong type')?.raw).toBe('{"size":"12"}');
    expect(post.find((c) => c.why === 'body member name: wrong type')?.raw).toBe('{"name":12345}');
    const nul = post.find((c) => c.why === 'body member name: NUL byte')!;
    expect(JSON.parse(nul.raw!).name).toBe('a\u0000b');
    const surrogate = post.find((c) => c.why === 'body member name: lone surrogate')!;
    expect(JSON.parse(surrogate.raw!).name).toBe('a\ud800b');
    expect(post.some((c) => c.why === 'body: truncated JSON' && c.raw === '{"a":')).toBe(true);
  });

  it('sends no body to GET routes', () => {
    expect(cases.filter((c) => c.method === 'GET').every((c) => c.raw === undefined)).toBe(true);
  });
});

describe('fuzzProblems', () => {
  it('accepts a refusal', () => {
    expect(fuzzProblems({ status: 400, body: '{"error":{"code":"validation","message":"name: invalid"}}' }, ['s3cret'])).toEqual([]);
  });

  it('flags a 5xx, a stack trace and an echoed secret', () => {
    expect(fuzzProblems({ status: 500, body: '{}' }, [])).toEqual(['answered 500']);
    expect(fuzzProblems({ status: 400, body: 'Error: x\n    at Object.<anonymous> (/app/src/a.ts:1:2)' }, [])).toEqual(['a stack trace in the reply']);
    expect(fuzzProblems({ status: 401, body: 'token s3cret is bad' }, ['s3cret'])).toEqual(['a secret echoed in the reply']);
  });
});
