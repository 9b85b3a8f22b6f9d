import { hash as digest } from 'node:crypto';

/**
 * A record read as stored, without parsing it, when its bytes are its own JCS form (as the
 * audit service writes them: `appendToChain`). Then the JCS form of the record without
 * `hash` — what the contract hashes — is those bytes with the `"hash":"…",` member cut
 * out (JCS sorts members and has no whitespace, so cutting one member leaves the JCS form
 * of the rest), and the verifier hashes bytes instead of parsing, walking and serializing
 * the event. The format does not require canonical values, so anything this scanner does
 * not prove canonical is `undefined`, and the caller verifies the parsed value as before:
 * the verdict is the same either way (record-bytes.unit.spec.ts, against JSON.parse and
 * the JCS of the parsed value).
 *
 * Proven canonical here: exactly the members event, hash, partition, prev, recordedAt,
 * seq, v in that order, no whitespace; `v` 1; partition and seq integers of at most 15
 * digits (safe, printed as written); prev and hash 64 lowercase hex; recordedAt RFC 3339
 * with milliseconds; the event an object holding a string `id`. Inside the event: keys of
 * printable ASCII without escapes, strictly increasing (so sorted as JCS sorts, by UTF-16
 * code units, and never repeated); strings of literal characters (well-formed UTF-8,
 * which holds no lone surrogate) and only the escapes JSON.stringify writes
 * (`\" \\ \b \f \n \r \t`, `\u00xx` for other control characters, in lowercase; never
 * `\udxxx`, a lone surrogate, which I-JSON forbids); numbers
 * that read back to the same text (ECMAScript Number::toString, which JCS prescribes,
 * so `-0`, `1.0`, `1e2` are not); `true`, `false`, `null`; at most 64 levels deep.
 */
export interface StoredRecordView {
  partition: number;
  seq: number;
  prev: string;
  /** The `hash` member as stored. */
  hash: string;
  /** SHA-256 (lowercase hex) of the record's JCS form without `hash`. */
  contentHash: string;
  eventId: string;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
/** `,"hash":"<64 hex>"`: cut out, the event's `}` then meets `,"partition"`. */
const HASH_MEMBER = 74;
const MAX_DEPTH = 64;

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const OPEN = ascii('{"event":{');
const HASH_KEY = ascii(',"hash":"');
const PARTITION_KEY = ascii('","partition":');
const PREV_KEY = ascii(',"prev":"');
const RECORDED_AT_KEY = ascii('","recordedAt":"');
const SEQ_KEY = ascii('","seq":');
const CLOSE = ascii(',"v":1}');
const TRUE = ascii('true');
const FALSE = ascii('false');
const NULL = ascii('null');

/** Byte classes, one load per byte: hex digits (lowercase), and what a string or a key may hold literally. */
const HEX = new Uint8Array(256);
const LITERAL = new Uint8Array(256);
const KEY = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  HEX[c] = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) ? 1 : 0;
  LITERAL[c] = c >= 0x20 && c < 0x80 && c !== QUOTE && c !== BACKSLASH ? 1 : 0;
  KEY[c] = LITERAL[c] && c !== 0x7f ? 1 : 0;
}

// The bytes being scanned (module state: the scan is synchronous and allocation-free).
const EMPTY = Buffer.alloc(0);
let b: Buffer = EMPTY;
let end = 0;
// Where the event's `id` string lies (its quotes included); -1 when not found.
let idStart = -1;
let idEnd = -1;
let idPlain = false;
let scratch = Buffer.allocUnsafe(1 << 16);

/**
 * The record's members and content hash, or undefined when the bytes are not provably its
 * JCS form. The record may be a range [start, stop) of `bytes` (a batch of records in one
 * buffer), read in place.
 */
export function storedRecordView(bytes: Uint8Array, start = 0, stop = bytes.byteLength): StoredRecordView | undefined {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  b = buf;
  end = stop;
  try {
    return view(buf, start);
  } finally {
    b = EMPTY;
  }
}

function view(buf: Buffer, start: number): StoredRecordView | undefined {
  if (!matches(start, OPEN)) return undefined;
  idStart = idEnd = -1;
  const eventEnd = object(start + OPEN.length, 1, true);
  if (eventEnd < 0 || idStart < 0 || !matches(eventEnd, HASH_KEY)) return undefined;
  const hashAt = eventEnd + HASH_KEY.length;
  if (!hex64(hashAt) || !matches(hashAt + 64, PARTITION_KEY)) return undefined;
  const partitionAt = hashAt + 64 + PARTITION_KEY.length;
  const partitionEnd = integer(partitionAt, 0);
  if (partitionEnd < 0 || !matches(partitionEnd, PREV_KEY)) return undefined;
  const prevAt = partitionEnd + PREV_KEY.length;
  if (!hex64(prevAt) || !matches(prevAt + 64, RECORDED_AT_KEY)) return undefined;
  const recordedAtAt = prevAt + 64 + RECORDED_AT_KEY.length;
  if (!timestamp(recordedAtAt) || !matches(recordedAtAt + 24, SEQ_KEY)) return undefined;
  const seqAt = recordedAtAt + 24 + SEQ_KEY.length;
  const seqEnd = integer(seqAt, 1);
  if (seqEnd < 0 || seqEnd + CLOSE.length !== end || !matches(seqEnd, CLOSE)) return undefined;
  // The body: the bytes without the hash member, hashed from a reused buffer.
  const bodyLength = end - start - HASH_MEMBER;
  if (scratch.length < bodyLength) scratch = Buffer.allocUnsafe(Math.max(bodyLength, scratch.length * 2));
  buf.copy(scratch, 0, start, eventEnd);
  buf.copy(scratch, eventEnd - start, eventEnd + HASH_MEMBER, end);
  const contentHash = digest('sha256', scratch.subarray(0, bodyLength), 'hex');
  return {
    partition: decimal(partitionAt, partitionEnd),
    seq: decimal(seqAt, seqEnd),
    prev: buf.toString('latin1', prevAt, prevAt + 64),
    hash: buf.toString('latin1', hashAt, hashAt + 64),
    contentHash,
    eventId: idPlain ? buf.toString('latin1', idStart + 1, idEnd - 1) : (JSON.parse(buf.toString('utf8', idStart, idEnd)) as string),
  };
}

function matches(at: number, literal: Uint8Array): boolean {
  if (at + literal.length > end) return false;
  for (let i = 0; i < literal.length; i++) if (b[at + i] !== literal[i]) return false;
  return true;
}

function hex64(at: number): boolean {
  if (at + 64 > end) return false;
  for (let i = at; i < at + 64; i++) if (HEX[b[i]] === 0) return false;
  return true;
}

const digit = (at: number) => b[at] >= 0x30 && b[at] <= 0x39;

/** `dddd-dd-ddTdd:dd:dd.dddZ` (the verifier's TIMESTAMP), as a JSON string's content. */
function timestamp(at: number): boolean {
  if (at + 24 > end) return false;
  for (let i = 0; i < 24; i++) {
    const c = b[at + i];
    const want = i === 4 || i === 7 ? 0x2d : i === 10 ? 0x54 : i === 13 || i === 16 ? 0x3a : i === 19 ? 0x2e : i === 23 ? 0x5a : -1;
    if (want === -1 ? !(c >= 0x30 && c <= 0x39) : c !== want) return false;
  }
  return true;
}

/** A non-negative integer ≥ min of at most 15 digits, as JCS writes it; the end, or -1. */
function integer(at: number, min: 0 | 1): number {
  if (at >= end || !digit(at)) return -1;
  if (b[at] === 0x30) return min === 0 ? at + 1 : -1;
  let i = at;
  while (i < end && digit(i)) i++;
  return i - at <= 15 ? i : -1;
}

function decimal(from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + (b[i] - 0x30);
  return n;
}

/** A JSON value in JCS form starting at `at`: its end, or -1. */
function value(at: number, depth: number): number {
  if (at >= end) return -1;
  const c = b[at];
  if (c === QUOTE) return string(at);
  if (c === 0x7b) return object(at + 1, depth + 1, false);
  if (c === 0x5b) return array(at + 1, depth + 1);
  if (c === 0x74) return matches(at, TRUE) ? at + 4 : -1;
  if (c === 0x66) return matches(at, FALSE) ? at + 5 : -1;
  if (c === 0x6e) return matches(at, NULL) ? at + 4 : -1;
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return number(at);
  return -1;
}

/** An object's members from just after `{`: the end after `}`, or -1. The event (top) notes where its `id` is. */
function object(at: number, depth: number, top: boolean): number {
  if (depth > MAX_DEPTH || at >= end) return -1;
  if (b[at] === 0x7d) return at + 1;
  let previousStart = -1;
  let previousEnd = -1;
  for (;;) {
    // A key: printable ASCII without escapes, after the previous one by code units.
    if (at >= end || b[at] !== QUOTE) return -1;
    const keyStart = at + 1;
    let i = keyStart;
    while (i < end && KEY[b[i]] === 1) i++;
    if (i >= end || b[i] !== QUOTE) return -1;
    const keyEnd = i;
    if (previousStart >= 0 && !after(keyStart, keyEnd, previousStart, previousEnd)) return -1;
    previousStart = keyStart;
    previousEnd = keyEnd;
    if (i + 1 >= end || b[i + 1] !== COLON) return -1;
    const valueStart = i + 2;
    const valueEnd = value(valueStart, depth);
    if (valueEnd < 0) return -1;
    if (top && keyEnd - keyStart === 2 && b[keyStart] === 0x69 && b[keyStart + 1] === 0x64 && b[valueStart] === QUOTE) {
      idStart = valueStart;
      idEnd = valueEnd;
      idPlain = plain(valueStart + 1, valueEnd - 1);
    }
    if (valueEnd >= end) return -1;
    if (b[valueEnd] === 0x7d) return valueEnd + 1;
    if (b[valueEnd] !== COMMA) return -1;
    at = valueEnd + 1;
  }
}

/** Whether the key at [s, e) comes strictly after the one at [ps, pe), comparing bytes (ASCII: UTF-16 code units). */
function after(s: number, e: number, ps: number, pe: number): boolean {
  const n = Math.min(e - s, pe - ps);
  for (let i = 0; i < n; i++) {
    if (b[s + i] !== b[ps + i]) return b[s + i] > b[ps + i];
  }
  return e - s > pe - ps;
}

function array(at: number, depth: number): number {
  if (depth > MAX_DEPTH || at >= end) return -1;
  if (b[at] === 0x5d) return at + 1;
  for (;;) {
    const valueEnd = value(at, depth);
    if (valueEnd < 0 || valueEnd >= end) return -1;
    if (b[valueEnd] === 0x5d) return valueEnd + 1;
    if (b[valueEnd] !== COMMA) return -1;
    at = valueEnd + 1;
  }
}

/** Printable ASCII without escapes between [s, e): the text is the bytes. */
function plain(s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (b[i] > 0x7e || b[i] === BACKSLASH) return false;
  return true;
}

/** A string from its opening quote, as JSON.stringify writes it: its end after the closing quote, or -1. */
function string(at: number): number {
  let i = at + 1;
  while (i < end) {
    while (i < end && LITERAL[b[i]] === 1) i++;
    if (i >= end) return -1;
    const c = b[i];
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      if (i + 1 >= end) return -1;
      const e = b[i + 1];
      // \" \\ \b \f \n \r \t
      if (e === QUOTE || e === BACKSLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
        continue;
      }
      if (e !== 0x75 || i + 5 >= end) return -1;
      // \udxxx: a lone surrogate, which I-JSON (and so RFC 8785) does not allow: the parse path calls it malformed.
      if (surrogateEscape(i) !== 0) return -1;
      // \u00xx, lowercase, only for control characters without a short form.
      if (b[i + 2] !== 0x30 || b[i + 3] !== 0x30) return -1;
      const h = b[i + 4];
      const l = b[i + 5];
      if (h !== 0x30 && h !== 0x31) return -1;
      const low = l >= 0x30 && l <= 0x39 ? l - 0x30 : l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
      if (low < 0) return -1;
      const code = (h - 0x30) * 16 + low;
      if (code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) return -1;
      i += 6;
      continue;
    }
    const n = utf8Sequence(i);
    if (n < 0) return -1;
    i += n;
  }
  return -1;
}

/** 1 when a `\udxxx` escape (lowercase hex) of a surrogate starts at `at`, else 0. */
function surrogateEscape(at: number): number {
  if (at + 5 >= end || b[at] !== BACKSLASH || b[at + 1] !== 0x75 || b[at + 2] !== 0x64 || HEX[b[at + 4]] === 0 || HEX[b[at + 5]] === 0) return 0;
  const c = b[at + 3];
  return (c >= 0x38 && c <= 0x39) || (c >= 0x61 && c <= 0x66) ? 1 : 0;
}

const continuation = (at: number, lo = 0x80, hi = 0xbf) => at < end && b[at] >= lo && b[at] <= hi;

/** The length of the well-formed UTF-8 sequence (RFC 3629: no overlong form, no surrogate) at `at`, or -1. */
function utf8Sequence(at: number): number {
  const c = b[at];
  if (c >= 0xc2 && c <= 0xdf) return continuation(at + 1) ? 2 : -1;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return continuation(at + 1, lo, hi) && continuation(at + 2) ? 3 : -1;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return continuation(at + 1, lo, hi) && continuation(at + 2) && continuation(at + 3) ? 4 : -1;
  }
  return -1;
}

/** A JSON number whose text is its ECMAScript Number::toString (what JCS writes): its end, or -1. */
function number(at: number): number {
  let i = at;
  if (b[i] === 0x2d) i++;
  if (i >= end || !digit(i)) return -1;
  if (b[i] === 0x30) i++;
  else while (i < end && digit(i)) i++;
  const integerEnd = i;
  if (i < end && b[i] === 0x2e) {
    i++;
    if (i >= end || !digit(i)) return -1;
    while (i < end && digit(i)) i++;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < end && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= end || !digit(i)) return -1;
    while (i < end && digit(i)) i++;
  }
  // A plain integer of up to 15 digits (not -0) prints as written; anything else is checked by a round trip.
  const digits = integerEnd - at - (b[at] === 0x2d ? 1 : 0);
  if (i === integerEnd && digits <= 15 && !(b[at] === 0x2d && b[at + 1] === 0x30)) return i;
  const text = b.toString('latin1', at, i);
  return String(Number(text)) === text ? i : -1;
}
