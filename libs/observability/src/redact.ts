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
