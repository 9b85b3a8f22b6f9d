/**
 * Keys whose values never reach a log line, event, error or trace: secrets, tokens,
 * passwords, keys, and the authorization material of requests.
 */
export const SENSITIVE_KEY =
  /pass(word|phrase)?|secret|token|authorization|cookie|api[-_]?key|private[-_]?key|client[-_]?key|credential[-_]?value|signature|^key$|^value$|^otp$|^totp$|^pin$/i;

/** References to a secret (its id, name, version, kind) are safe to log. */
const REFERENCE_SUFFIX = /(Id|Ids|_id|_ids|Ref|Name|Version|Type|Kind|Count|At|Expiry|ExpiresAt)$/;

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEY.test(key) && !REFERENCE_SUFFIX.test(key);
}

export const REDACTED = '[REDACTED]';

/** A deep copy of `value` with sensitive keys' values replaced, cycles cut. */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  // A database error, whether the Error itself or pino's serialized copy of it.
  const database = databaseError(value);
  if (database) return database;
  if (value instanceof Error) {
    return { type: value.name, message: value.message, stack: value.stack, ...(redact({ ...value }, seen) as object) };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, seen));
  if (Buffer.isBuffer(value)) return `[Buffer ${value.length} bytes]`;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = isSensitiveKey(key) ? REDACTED : redact(inner, seen);
  }
  return out;
}

/** The PostgreSQL error an error is or wraps (TypeORM's QueryFailedError holds it as `driverError`). */
function pgFieldsOf(error: object): Record<string, unknown> | undefined {
  const e = error as Record<string, unknown>;
  const pg = (e.driverError ?? e) as Record<string, unknown>;
  const sqlState = typeof pg.code === 'string' && /^[0-9A-Z]{5}$/.test(pg.code);
  return sqlState && ('severity' in pg || 'query' in e || 'parameters' in e) ? pg : undefined;
}

/**
 * A database error as it may be logged: the SQLSTATE and the names of the constraint,
 * table and column, never the query text, its parameters, the row's values (`detail`,
 * `where`) or the message (PostgreSQL quotes input in some: `invalid input syntax for
 * type uuid: "…"`); the stack without its first line, which repeats the message.
 */
function databaseError(error: object): Record<string, unknown> | undefined {
  const pg = pgFieldsOf(error);
  if (!pg) return undefined;
  const names: Record<string, unknown> = {};
  for (const key of ['constraint', 'table', 'column', 'schema', 'dataType', 'routine']) {
    if (typeof pg[key] === 'string') names[key] = pg[key];
  }
  const e = error as { type?: unknown; name?: unknown; stack?: unknown };
  const type = typeof e.type === 'string' ? e.type : typeof e.name === 'string' ? e.name : error.constructor.name;
  const stack =
    typeof e.stack === 'string'
      ? e.stack
          .split('\n')
          .filter((line) => line.trimStart().startsWith('at '))
          .join('\n')
      : undefined;
  return { type, message: `database error ${pg.code as string}`, code: pg.code, ...names, ...(stack ? { stack } : {}) };
}
