import canonicalize from 'canonicalize';

/**
 * RFC 8785 (JCS) canonical JSON, fast path for values that came out of `JSON.parse`
 * (strings, finite numbers, booleans, null, arrays and plain objects). It produces the
 * same bytes as the `canonicalize` library (proven by jcs.unit.spec.ts over many
 * generated values): strings and numbers are serialized by `JSON.stringify`, which is
 * what JCS specifies (ECMAScript Number::toString and JSON string escaping); object
 * members are sorted by UTF-16 code units (`Array.prototype.sort`'s default order).
 * It avoids the library's string re-concatenation per member and skips the sort when
 * the members are already in order, which is how records are read back. Anything that
 * is not a plain JSON value (undefined members, `toJSON`, symbols, functions, class
 * instances) is handed to `canonicalize` itself.
 */
export function fastCanonicalJson(value: unknown): string {
  if (inCanonicalOrder(value)) return JSON.stringify(value);
  const copy = canonicalCopy(value);
  if (copy !== NOT_PLAIN) return JSON.stringify(copy);
  const out = serialize(value);
  if (out === undefined) {
    const text = canonicalize(value);
    if (text === undefined) throw new Error('value has no JSON representation');
    return text;
  }
  return out;
}

/**
 * Whether `value` is a plain JSON value whose objects all hold their members in JCS
 * order (UTF-16 code units). Then `JSON.stringify(value)` is its JCS form byte for byte:
 * JSON.stringify writes members in property order, which for such objects is insertion
 * order (integer-like keys, which V8 moves to the front, are in order only when that
 * is also their code-unit order, which this checks), and strings and numbers as JCS
 * does. Records read back from the topic are in this order, so verifying them costs a
 * walk and a native stringify instead of building the text member by member.
 */
function inCanonicalOrder(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!inCanonicalOrder(value[i])) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const object = value as Record<string, unknown>;
      let previous: string | undefined;
      for (const key in object) {
        if (!Object.hasOwn(object, key)) return false;
        if (previous !== undefined && !(previous < key)) return false;
        if (!inCanonicalOrder(object[key])) return false;
        previous = key;
      }
      return true;
    }
    default:
      return false;
  }
}

const NOT_PLAIN = Symbol('not plain');
/** Up to this many keys an insertion sort (quadratic: beyond it, the native sort). */
const SMALL_OBJECT = 16;

/**
 * An object's keys in UTF-16 code-unit order (JCS; `<` on strings and the default sort
 * compare alike). Events' objects have a few keys each: an insertion sort of those
 * allocates nothing, where `Array.prototype.sort` took ~2.5 kB of scratch an event, the
 * most any function of the audit's ingest allocated.
 */
function sortedKeys(object: Record<string, unknown>): string[] {
  const keys = Object.keys(object);
  if (keys.length > SMALL_OBJECT) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i];
    let j = i - 1;
    for (; j >= 0 && keys[j] > key; j--) keys[j + 1] = keys[j];
    keys[j + 1] = key;
  }
  return keys;
}

/** A key V8 would put before the others whatever the insertion order (an array index, or near it). */
const INTEGER_LIKE = /^(?:0|[1-9][0-9]*)$/;

/**
 * A copy of a plain JSON value with every object's members inserted in JCS order, so that
 * the native `JSON.stringify` of the copy is its JCS form (events as consumed are not in
 * that order: a copy and a native stringify cost about half of `serialize`'s member-by-member
 * text). NOT_PLAIN for anything `serialize` handles alone (integer-like keys, which V8
 * reorders) or hands to `canonicalize` (non-finite numbers, undefined, functions, class
 * instances), and for a member named `__proto__` (in a copy it would set the prototype).
 */
function canonicalCopy(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : NOT_PLAIN;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const out = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) if ((out[i] = canonicalCopy(value[i])) === NOT_PLAIN) return NOT_PLAIN;
        return out;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
      const object = value as Record<string, unknown>;
      const keys = sortedKeys(object);
      const out: Record<string, unknown> = {};
      for (const key of keys) {
        const first = key.charCodeAt(0);
        if ((first >= 48 && first <= 57 && INTEGER_LIKE.test(key)) || key === '__proto__') return NOT_PLAIN;
        if ((out[key] = canonicalCopy(object[key])) === NOT_PLAIN) return NOT_PLAIN;
      }
      return out;
    }
    default:
      return NOT_PLAIN;
  }
}

/** undefined: not a plain JSON value somewhere inside (the caller falls back). */
function serialize(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) return undefined;
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const item = serialize(value[i]);
          if (item === undefined) return undefined;
          out += i === 0 ? item : `,${item}`;
        }
        return `${out}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return undefined;
      const object = value as Record<string, unknown>;
      const keys = Object.keys(object);
      let sorted = true;
      for (let i = 1; i < keys.length; i++) {
        if (keys[i - 1] > keys[i]) {
          sorted = false;
          break;
        }
      }
      if (!sorted) keys.sort();
      let out = '{';
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        const member = serialize(object[key]);
        if (member === undefined) return undefined;
        out += `${i === 0 ? '' : ','}${JSON.stringify(key)}:${member}`;
      }
      return `${out}}`;
    }
    default:
      return undefined;
  }
}

/**
 * The JCS form of a record without its `hash` member, i.e.
 * `canonicalize({v, partition, seq, prev, recordedAt, event})`, built without copying
 * the record (its members in JCS order: event, partition, prev, recordedAt, seq, v).
 */
export function canonicalRecordBody(record: { v: unknown; partition: unknown; seq: unknown; prev: unknown; recordedAt: unknown; event: unknown }): string {
  const { v, partition, seq, prev, recordedAt, event } = record;
  const parts = [event, partition, prev, recordedAt, seq, v].map((value) => (value === undefined ? '' : inCanonicalOrder(value) ? JSON.stringify(value) : serialize(value)));
  if (parts.some((part) => part === undefined)) return fastCanonicalJson({ v, partition, seq, prev, recordedAt, event });
  let out = '{';
  for (let i = 0; i < RECORD_BODY_KEYS.length; i++) {
    if (parts[i] === '') continue;
    out += `${out.length === 1 ? '' : ','}"${RECORD_BODY_KEYS[i]}":${parts[i]}`;
  }
  return `${out}}`;
}

const RECORD_BODY_KEYS = ['event', 'partition', 'prev', 'recordedAt', 'seq', 'v'] as const;

/**
 * Whether JSON text written by JSON.stringify (as every canonical form here is) holds a
 * lone surrogate: JSON.stringify writes one as a `\udxxx` escape (a pair it writes as is).
 * I-JSON, and so RFC 8785, allows none; other JCS implementations replace or refuse them.
 */
export function hasLoneSurrogate(json: string): boolean {
  return json.includes('\\ud') && LONE_SURROGATE_ESCAPE.test(json);
}

// A `\ud800`–`\udfff` escape after an even number of backslashes (an odd one escapes the first).
const LONE_SURROGATE_ESCAPE = /(?<!\\)(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

/** The value with every string (keys too) made well-formed: each lone surrogate becomes U+FFFD. */
export function withWellFormedStrings(value: unknown): unknown {
  if (typeof value === 'string') return wellFormed(value);
  if (Array.isArray(value)) return value.map(withWellFormedStrings);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [wellFormed(k), withWellFormedStrings(v)]));
  }
  return value;
}

const wellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();
