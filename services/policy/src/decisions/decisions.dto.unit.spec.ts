import { askedByService, batchRequestSchema, decisionRequestSchema, MAX_BATCH, parseBatchRequest, parseDecisionRequest } from './decisions.dto';
import { parse } from '../validation';
import { evaluate } from '../model/evaluate';

const request = decisionRequestSchema.parse({
  tenantId: 'acme',
  subject: { type: 'user', id: 'alice' },
  action: 'read',
  resource: { type: 'document', id: 'd-1' },
  explain: true,
});

describe('askedByService', () => {
  it('drops explain and stamps the asking service, so a decision asked by a service never carries explain details', () => {
    const asked = askedByService(request, 'llm-router');
    expect(asked).not.toHaveProperty('explain');
    expect(asked.askedBy).toBe('llm-router');
    expect(evaluate(asked, { tenant: undefined, platform: undefined })).not.toHaveProperty('explain');
    expect(evaluate(request, { tenant: undefined, platform: undefined })).toHaveProperty('explain'); // what it would have returned
  });

  it('stamps no service when the caller is unknown', () => {
    expect(askedByService(request, undefined)).not.toHaveProperty('askedBy');
  });
});

describe('parseDecisionRequest / parseBatchRequest: the fast path accepts only what the schema accepts, and refusals are the schema’s', () => {
  const base = {
    tenantId: 'acme',
    subject: { type: 'agent', id: 'helper', actingFor: 'bob', tenantId: 'acme', token: 'eyJ.x.y' },
    action: 'credential.use',
    resource: { type: 'credential', id: 'c-1', tenantId: 'acme', attributes: { scopes: ['tool:gerrit'], level: 3, open: true, department: 'it' } },
  };
  const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
  const values: unknown[] = [
    undefined, null, '', 'x', 'a'.repeat(200), 'a'.repeat(201), 'a'.repeat(1025), 'a'.repeat(8193), 0, -1.5, true, false, [], ['a'], {}, { a: 1 },
    'user', 'service', 'bad type', 'Acme-1', '-acme', 'a:b', 'A'.repeat(129), 'b'.repeat(128), Number.NaN, Number.POSITIVE_INFINITY,
  ];
  /** The base request with the value at `path` replaced by `value` (removed when undefined). */
  const withValue = (path: string[], value: unknown): unknown => {
    const copy = clone(base) as Record<string, unknown>;
    let at = copy;
    for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
    if (value === undefined) delete at[path[path.length - 1]];
    else at[path[path.length - 1]] = value;
    return copy;
  };
  const paths = [
    ['tenantId'], ['action'], ['explain'], ['parameters'], ['approvalToken'], ['unknown'],
    ['subject'], ['subject', 'type'], ['subject', 'id'], ['subject', 'actingFor'], ['subject', 'tenantId'], ['subject', 'token'], ['subject', 'extra'],
    ['resource'], ['resource', 'type'], ['resource', 'id'], ['resource', 'tenantId'], ['resource', 'fields'], ['resource', 'extra'],
    ['resource', 'attributes'], ['resource', 'attributes', 'scopes'], ['resource', 'attributes', 'level'], ['resource', 'attributes', 'Upper'],
    ['resource', 'attributes', 'a'.repeat(64)], ['resource', 'attributes', 'a'.repeat(65)], ['resource', 'attributes', '_x'],
  ];
  const special: unknown[] = [
    JSON.parse('{"tenantId":"acme","subject":{"type":"user","id":"u"},"action":"read","resource":{"type":"doc","attributes":{"__proto__":"x"}}}'),
    JSON.parse('{"tenantId":"acme","subject":{"type":"user","id":"u","__proto__":{"admin":true}},"action":"read","resource":{"type":"doc"}}'),
    withValue(['resource', 'attributes'], Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`a${i}`, i]))),
    withValue(['resource', 'attributes'], Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`a${i}`, i]))),
    withValue(['resource', 'attributes', 'scopes'], Array.from({ length: 256 }, () => 'b'.repeat(256))),
    withValue(['resource', 'attributes', 'scopes'], Array.from({ length: 257 }, () => 'b')),
    withValue(['resource', 'attributes', 'scopes'], ['b'.repeat(257)]),
    withValue(['resource', 'attributes', 'scopes'], ['b', 1]),
    withValue(['resource', 'attributes', 'scopes'], [['b']]),
    // eslint-disable-next-line no-sparse-arrays
    withValue(['resource', 'attributes', 'scopes'], ['b', , 'c']),
    Object.assign(Object.create({ inherited: true }) as object, clone(base)),
    'not an object', 42, null, [base],
  ];
  const inputs = [clone(base), ...paths.flatMap((path) => values.map((value) => withValue(path, value))), ...special];

  /** What the schema alone answers: its output, or the error it refuses with. */
  const bySchema = (schema: typeof decisionRequestSchema | typeof batchRequestSchema, input: unknown) => {
    try {
      return { value: parse(schema, input) as unknown };
    } catch (error) {
      return { error: (error as Error).message };
    }
  };
  const byFastPath = (f: (input: unknown) => unknown, input: unknown) => {
    try {
      return { value: f(input) };
    } catch (error) {
      return { error: (error as Error).message };
    }
  };

  it('answers every one of the inputs exactly as the schema does (value or refusal message)', () => {
    let fast = 0;
    for (const input of inputs) {
      const expected = bySchema(decisionRequestSchema, input);
      const actual = byFastPath(parseDecisionRequest, input);
      expect({ input, ...actual }).toEqual({ input, ...expected });
      if (actual.value !== undefined && actual.value === input) fast++;
    }
    expect(inputs.filter((i) => bySchema(decisionRequestSchema, i).error).length).toBeGreaterThan(150); // the refusals were tried
    expect(fast).toBeGreaterThan(50); // and the fast path was taken for the plain requests
  });

  it('takes a plain request as it is, without copying it', () => {
    const input = clone(base);
    expect(parseDecisionRequest(input)).toBe(input);
  });

  it('answers batches as the batch schema does, each request checked', () => {
    const batches: unknown[] = [
      { requests: [clone(base)] },
      { requests: Array.from({ length: MAX_BATCH }, () => clone(base)) },
      { requests: Array.from({ length: MAX_BATCH + 1 }, () => clone(base)) },
      { requests: [] },
      { requests: [clone(base), withValue(['subject', 'type'], 'robot')] },
      { requests: [clone(base), withValue(['resource', 'attributes', 'a'.repeat(65)], 1)] },
      { requests: [clone(base)], extra: 1 },
      { requests: clone(base) },
      [clone(base)],
      null,
    ];
    for (const input of batches) expect(byFastPath(parseBatchRequest, input)).toEqual(bySchema(batchRequestSchema, input));
  });
});
