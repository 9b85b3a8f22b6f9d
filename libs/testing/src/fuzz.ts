/**
 * Malformed requests for every route of a service's OpenAPI document: what an attacker
 * or a broken client sends. The cases are pure data (no I/O), so the generator is tested
 * on its own; test/fuzz.e2e.spec.ts sends them to the running services and fails on any
 * 5xx, any stack trace and any reply that echoes a secret.
 */

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface OpenApiDocument {
  paths: Record<string, Record<string, Json>>;
}

export interface FuzzCase {
  method: string;
  /** Path with every parameter filled in and the query string, percent-encoded as sent. */
  path: string;
  headers: Record<string, string>;
  raw?: string;
  /** What the case tries, for the failure message. */
  why: string;
}

export interface FuzzOptions {
  /** Values for path parameters by name, used where a case malforms something else (e.g. tenantId: 'demo'). */
  known?: Record<string, string>;
  /** Routes left out (health, metrics and docs are always left out). */
  skip?: (method: string, path: string) => boolean;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const ALWAYS_SKIPPED = /^\/(health|metrics|docs)(\/|$)/;

/** Path or query values that are not what any route expects. */
export const MALFORMED_PARAMS: ReadonlyArray<[string, string]> = [
  ['NUL byte', '%00'],
  ['36 dashes (the shape of a UUID)', '-'.repeat(36)],
  ['invalid UTF-8 (a lone surrogate encoded)', '%ED%A0%80'],
  ['a lone percent sign', '%'],
  ['bidirectional override', '%E2%80%AE'],
  ['a 4,000-character value', 'a'.repeat(4000)],
  ['path traversal', '..%2F..%2Fetc%2Fpasswd'],
  ['the nil UUID', '00000000-0000-0000-0000-000000000000'],
  ['SQL metacharacters', "x'%3B--"],
];

/** JSON members that are strings no field should accept. */
const MALFORMED_STRINGS: ReadonlyArray<[string, string]> = [
  ['NUL byte', 'a\\u0000b'],
  ['lone surrogate', 'a\\ud800b'],
  ['bidirectional override', 'a\\u202eb'],
  ['20,000 characters', 'x'.repeat(20_000)],
];

/** Bodies that are not JSON objects at all, or objects no schema should take. */
const MALFORMED_BODIES: ReadonlyArray<[string, string, string]> = [
  ['truncated JSON', '{"a":', 'application/json'],
  ['JSON null', 'null', 'application/json'],
  ['a JSON array', '[1,2,3]', 'application/json'],
  ['a JSON string', '"x"', 'application/json'],
  ['an empty object', '{}', 'application/json'],
  ['deeply nested objects', `${'{"a":'.repeat(500)}1${'}'.repeat(500)}`, 'application/json'],
  ['__proto__ pollution', '{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}', 'application/json'],
  ['form data', 'a=1&b=2', 'application/x-www-form-urlencoded'],
  ['plain text', 'hello', 'text/plain'],
  ['a lone surrogate in raw JSON', '{"name":"\\ud800"}', 'application/json'],
];

const UNDOCUMENTED_MEMBERS = ['name', 'id', 'username', 'password', 'email', 'description'];

const BAD_HEADERS: ReadonlyArray<[string, Record<string, string>]> = [
  ['If-Match garbage', { 'if-match': 'garbage' }],
  ['If-Match with an open quote', { 'if-match': '"' }],
  ['If-Match a huge version', { 'if-match': '"99999999999999999999999"' }],
  ['If-Match a negative version', { 'if-match': '"-1"' }],
];

/** A member value of the wrong type for a schema type. */
function wrongTypeFor(schema: Json): string {
  switch (schema?.type) {
    case 'string':
      return '12345';
    case 'integer':
    case 'number':
      return '"12"';
    case 'boolean':
      return '"true"';
    case 'array':
      return '{"0":1}';
    case 'object':
      return '[]';
    default:
      return '{"$ne":null}';
  }
}

function bodySchema(operation: Json): Json | undefined {
  return operation?.requestBody?.content?.['application/json']?.schema;
}

/** The path with each `{name}` replaced by `fill(name)` (already encoded). */
function fillPath(template: string, fill: (name: string) => string): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => fill(name));
}

/**
 * Every malformed case for every operation of the document: bad path parameters, bad
 * query parameters, bad bodies (non-objects, wrong member types, poisoned strings), bad
 * conditional headers. The number of cases grows with the routes, not exponentially.
 */
export function fuzzCases(doc: OpenApiDocument, options: FuzzOptions = {}): FuzzCase[] {
  const cases: FuzzCase[] = [];
  const known = (name: string) => encodeURIComponent(options.known?.[name] ?? 'fuzz');
  for (const [template, item] of Object.entries(doc.paths)) {
    if (ALWAYS_SKIPPED.test(template)) continue;
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation || options.skip?.(method.toUpperCase(), template)) continue;
      const M = method.toUpperCase();
      const base = fillPath(template, known);
      const add = (c: Omit<FuzzCase, 'method'>) => cases.push({ method: M, ...c });

      const pathParams = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const name of pathParams) {
        for (const [why, value] of MALFORMED_PARAMS) {
          add({ path: fillPath(template, (n) => (n === name ? value : known(n))), headers: {}, why: `path parameter ${name}: ${why}` });
        }
      }

      const queryParams: string[] = (operation.parameters ?? []).filter((p: Json) => p.in === 'query').map((p: Json) => p.name);
      for (const name of queryParams) {
        for (const [why, value] of MALFORMED_PARAMS) add({ path: `${base}?${encodeURIComponent(name)}=${value}`, headers: {}, why: `query ${name}: ${why}` });
        add({ path: `${base}?${encodeURIComponent(name)}=a&${encodeURIComponent(name)}=b`, headers: {}, why: `query ${name}: given twice` });
      }
      add({ path: `${base}?cursor=%00&limit=-1&limit=99999999999999999999`, headers: {}, why: 'undeclared query parameters' });

      if (M !== 'GET' && M !== 'DELETE') {
        for (const [why, raw, type] of MALFORMED_BODIES) add({ path: base, headers: { 'content-type': type }, raw, why: `body: ${why}` });
        const properties: Record<string, Json> = bodySchema(operation)?.properties ?? {};
        // Without a schema in the document, the member names most routes take.
        const names = Object.keys(properties).length > 0 ? Object.keys(properties) : UNDOCUMENTED_MEMBERS;
        for (const name of names) {
          add({ path: base, headers: { 'content-type': 'application/json' }, raw: `{"${name}":${wrongTypeFor(properties[name])}}`, why: `body member ${name}: wrong type` });
          for (const [why, value] of MALFORMED_STRINGS) {
            add({ path: base, headers: { 'content-type': 'application/json' }, raw: `{"${name}":"${value}"}`, why: `body member ${name}: ${why}` });
          }
        }
      }

      if (M === 'PUT' || M === 'PATCH' || M === 'DELETE' || M === 'POST') {
        for (const [why, headers] of BAD_HEADERS) {
          add({ path: base, headers: { 'content-type': 'application/json', ...headers }, raw: '{}', why });
        }
      }
    }
  }
  return cases;
}

export interface FuzzReply {
  status: number;
  body: string;
}

/**
 * What is wrong with a reply to a malformed request: a 5xx (the service did not refuse
 * the input, it failed on it), a stack trace, or a secret echoed back.
 */
export function fuzzProblems(reply: FuzzReply, secrets: readonly string[]): string[] {
  const problems: string[] = [];
  if (reply.status >= 500) problems.push(`answered ${reply.status}`);
  if (reply.status === 0) problems.push('no answer');
  if (/\n\s+at .+\(.+:\d+:\d+\)/.test(reply.body) || /node_modules\//.test(reply.body)) problems.push('a stack trace in the reply');
  for (const s of secrets) if (s && reply.body.includes(s)) problems.push('a secret echoed in the reply');
  return problems;
}
