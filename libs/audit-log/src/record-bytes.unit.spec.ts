import { createHash, generateKeyPairSync } from 'node:crypto';
import canonicalize from 'canonicalize';
import { appendToChain, canonicalJson, ChainVerifier, emptyHead, isRecord, keysOf, publicJwk, recordHash, signCheckpoint, type AuditRecord, type Checkpoint } from './index';
import { withWellFormedStrings } from './jcs';
import { storedRecordView } from './record-bytes';
import { generator } from '../test/generated-json';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const keys = keysOf({ keys: [publicJwk(publicKey, 'k1')] });

/** A record stored as the audit service writes it: the JCS form of the whole record (canonicalJson is the library's, jcs.unit.spec.ts). */
const stored = (generated: Omit<AuditRecord, 'hash'>): Buffer => {
  // with U+FFFD for lone surrogates, as the writer chains them (appendToChain)
  const r = withWellFormedStrings(generated) as Omit<AuditRecord, 'hash'>;
  return Buffer.from(canonicalJson({ ...r, hash: recordHash(r) }), 'utf8');
};

/** The verdict on these values, each given as bytes (the fast path where it applies) or parsed (the reference). */
function verdicts(values: readonly Buffer[], checkpoints: readonly Checkpoint[] = [], allowLaterStart = false) {
  const bytes = new ChainVerifier({ keys, allowLaterStart });
  const parsed = new ChainVerifier({ keys, allowLaterStart });
  for (const cp of checkpoints) {
    bytes.addCheckpoint(cp);
    parsed.addCheckpoint(cp);
  }
  for (const value of values) {
    bytes.addRecordBytes(value, 7);
    let record: unknown;
    try {
      record = JSON.parse(value.toString('utf8'));
    } catch {
      record = { partition: 7, unparsable: true };
    }
    parsed.addRecord(record);
  }
  return { bytes: bytes.finish(), parsed: parsed.finish() };
}

/**
 * When the scanner reads bytes without parsing, what it reads is what parsing gives: true
 * (read as bytes), false (left to the parser), or what differs.
 */
function readAsParsed(value: Buffer): boolean | string {
  const view = storedRecordView(value);
  if (!view) return false;
  const record = JSON.parse(value.toString('utf8')) as AuditRecord;
  const expected = { partition: record.partition, seq: record.seq, prev: record.prev, hash: record.hash, contentHash: recordHash(record), eventId: record.event.id };
  if (!isRecord(record)) return `not a record: ${value.toString('utf8')}`;
  return JSON.stringify(view) === JSON.stringify(expected) ? true : `${JSON.stringify(view)} read from ${value.toString('utf8')}, parsed ${JSON.stringify(expected)}`;
}

/** A chain of `n` records of partition 0 as the audit service writes them, checkpoints every 10. */
function chain(n: number) {
  const values: Buffer[] = [];
  const checkpoints: Checkpoint[] = [];
  let head = emptyHead(0);
  for (let i = 0; i < n; i++) {
    const event = { id: `0193a000-0000-7000-8000-${String(i).padStart(12, '0')}`, type: 'credential.secret.read', source: 'credential', tenantId: 't', actor: { type: 'user', id: `u-${i}` }, occurredAt: '2026-11-22T10:00:00.000Z', data: { i, note: 'é ü 😀 \u0007\u001b "q" a/b' } };
    const next = appendToChain(head, event, '2026-11-22T10:00:01.000Z');
    values.push(Buffer.from(next.value));
    head = next.head;
    if (head.seq % 10 === 0) checkpoints.push(signCheckpoint({ v: 1, partition: 0, seq: head.seq, hash: head.hash, at: '2026-11-22T10:00:02.000Z', keyId: 'k1' }, privateKey));
  }
  return { values, checkpoints };
}

const edited = (value: Buffer, from: string, to: string): Buffer => {
  const text = value.toString('utf8');
  expect(text).toContain(from);
  return Buffer.from(text.replace(from, to), 'utf8');
};

describe('records verified from their stored bytes', () => {
  it('reads 6,000 generated records stored in JCS form exactly as parsing them does (members, content hash)', () => {
    const outcomes: Array<boolean | string> = [];
    for (const asciiKeys of [true, false]) {
      const gen = generator(asciiKeys ? 11 : 12, { asciiKeys });
      for (let i = 0; i < 3_000; i++) outcomes.push(readAsParsed(stored(gen.record() as Omit<AuditRecord, 'hash'>)));
    }
    expect(outcomes.filter((o) => typeof o === 'string')).toEqual([]);
    // Keys outside printable ASCII are left to the parser; the rest is read as bytes.
    expect(outcomes.filter((o) => o === true).length).toBeGreaterThan(3_600);
  });

  it('reads what the audit service writes, whatever the strings and numbers hold, without parsing', () => {
    let head = emptyHead(3);
    const datas = [{}, { b: 1, a: [1.5, 'x', null, true, false, [], {}] }, { e: 'é ü\u2028"\\/', z: { y: -0.000001, x: 1e21, w: 5e-324, v: -1234567890123456 } }, { c: '\u0000\u001f\b\f\n\r\t\u007f😀', s: ['\ud800', 'x\udfff', '\udc00\ud800', '\ud800\ud800'] }, { n: [0, -1, 0.1, 123456789012345680000] }];
    for (const data of datas) {
      const next = appendToChain(head, { id: `e-${head.seq}`, type: 'a.b.c', source: 's', tenantId: 't', actor: { type: 'user', id: 'u' }, occurredAt: '2026-11-22T10:00:00.000Z', data }, '2026-11-22T10:00:00.123Z');
      expect(readAsParsed(Buffer.from(next.value))).toBe(true);
      head = next.head;
    }
  });

  it('chains lone surrogates as U+FFFD, so that the hash is that of RFC 8785 over the record as any verifier reads it', () => {
    const next = appendToChain(emptyHead(0), { id: 'e-1', type: 'a.b.c', source: 's', tenantId: 't', actor: { type: 'user', id: 'u' }, occurredAt: '2026-11-22T10:00:00.000Z', data: { program: `${'x'.repeat(199)}\ud83d`, ['k\udc00']: ['\udfff\ud800', 'ok 😀'] } }, '2026-11-22T10:00:00.123Z');
    expect(next.value).not.toMatch(/\\ud[89a-f]/);
    const parsed = JSON.parse(next.value) as AuditRecord;
    expect(parsed.event.data).toEqual({ program: `${'x'.repeat(199)}\ufffd`, ['k\ufffd']: ['\ufffd\ufffd', 'ok 😀'] });
    const { hash, ...body } = parsed;
    expect(hash).toBe(createHash('sha256').update(canonicalize(body)!).digest('hex'));
    expect(verdicts([Buffer.from(next.value)])).toEqual({ bytes: expect.objectContaining({ ok: true }), parsed: expect.objectContaining({ ok: true }) });
  });

  it('calls a record holding a lone surrogate malformed, from its bytes and parsed (I-JSON, so RFC 8785, has none)', () => {
    const record = { v: 1 as const, partition: 7, seq: 1, prev: '0'.repeat(64), recordedAt: '2026-11-22T10:00:00.123Z', event: { id: 'e-1', type: 'a.b.c', source: 's', tenantId: 't', actor: { type: 'user', id: 'u' }, occurredAt: '2026-11-22T10:00:00.000Z', data: { s: 'x\ud83d' } } };
    const value = Buffer.from(canonicalJson({ ...record, hash: recordHash(record) }), 'utf8');
    expect(value.toString('utf8')).toContain('\\ud83d');
    const { bytes, parsed } = verdicts([value]);
    expect(bytes.failure).toMatchObject({ reason: 'malformed', partition: 7, seq: 1 });
    expect(parsed.failure).toMatchObject({ reason: 'malformed', partition: 7, seq: 1 });
  });

  it('gives the verdict of the parsed record for 10,000 byte-level mutations of stored records', () => {
    const gen = generator(20261204, { asciiKeys: true });
    const interesting = [...' "\\09afAF,:{}[]e-.+/un', '\u0000', '\u007f'].map((c) => c.charCodeAt(0)).concat([0x80, 0xbf, 0xc0, 0xc3, 0xed, 0xf0, 0xf5, 0xff]);
    const { int } = gen;
    const differences: string[] = [];
    let fastAccepted = 0;
    for (let i = 0; i < 10_000; i++) {
      const value = stored(gen.record() as Omit<AuditRecord, 'hash'>);
      const at = int(value.length);
      const byte = Buffer.from([interesting[int(interesting.length)]]);
      const to = Math.min(value.length, at + 1 + int(8));
      const mutated = [
        () => Buffer.concat([value.subarray(0, at), byte, value.subarray(at + 1)]), // replaced
        () => Buffer.concat([value.subarray(0, at), byte, value.subarray(at)]), // inserted
        () => Buffer.concat([value.subarray(0, at), value.subarray(at + 1)]), // deleted
        () => Buffer.concat([value.subarray(0, to), value.subarray(at, to), value.subarray(to)]), // repeated
      ][int(4)]();
      const read = readAsParsed(mutated);
      if (typeof read === 'string') differences.push(read);
      if (read === true) fastAccepted++;
      const { bytes, parsed } = verdicts([mutated], [], true);
      if (JSON.stringify(bytes) !== JSON.stringify(parsed)) differences.push(`${JSON.stringify(bytes)} for ${mutated.toString('utf8')}, parsed ${JSON.stringify(parsed)}`);
    }
    expect(differences).toEqual([]);
    // Many mutations keep the bytes canonical (a letter for a letter): those are hashed as bytes.
    expect(fastAccepted).toBeGreaterThan(1_000);
  });

  it('reads a record in place, as a range of a larger buffer (a batch of records), exactly as alone, whatever lies around it', () => {
    const gen = generator(20261205, { asciiKeys: true });
    const { int } = gen;
    const differences: string[] = [];
    for (let i = 0; i < 3_000; i++) {
      const value = stored(gen.record() as Omit<AuditRecord, 'hash'>);
      // Cut short or intact, between bytes that would complete or extend it if read past its end.
      const record = int(4) === 0 ? value.subarray(0, int(value.length)) : value;
      const around = [Buffer.from(',"v":1}'), Buffer.from('"}'), value.subarray(int(value.length)), Buffer.from([0x80, 0x22])];
      const before = around[int(around.length)];
      const batch = Buffer.concat([before, record, around[int(around.length)]]);
      const inPlace = storedRecordView(batch, before.length, before.length + record.length);
      const alone = storedRecordView(Buffer.from(record));
      if (JSON.stringify(inPlace) !== JSON.stringify(alone)) differences.push(`${JSON.stringify(inPlace)} in place, ${JSON.stringify(alone)} alone: ${record.toString('utf8')}`);
      const a = new ChainVerifier({ keys, allowLaterStart: true });
      const b = new ChainVerifier({ keys, allowLaterStart: true });
      a.addRecordBytes(batch, 7, before.length, before.length + record.length);
      b.addRecordBytes(Buffer.from(record), 7);
      if (JSON.stringify(a.finish()) !== JSON.stringify(b.finish())) differences.push(`verdicts differ for ${record.toString('utf8')}`);
    }
    expect(differences).toEqual([]);
  });

  it('verifies records stored in another JSON form than JCS by the JCS of their content (the format allows any JSON)', () => {
    const { values } = chain(3);
    const text = values[1].toString('utf8');
    const record = JSON.parse(text) as AuditRecord;
    const forms = [
      JSON.stringify({ v: record.v, seq: record.seq, partition: record.partition, hash: record.hash, prev: record.prev, recordedAt: record.recordedAt, event: record.event }),
      JSON.stringify(JSON.parse(text), null, 2), // whitespace
      `${text}\n`,
      text.replace('"type":"credential.secret.read"', '"type":"\\u0063redential.secret.read"'),
      text.replace('"credential.secret.read"', '"credential.secret\\u002eread"'),
      text.replace('a/b', 'a\\/b'),
      text.replace('\\u001b', '\\u001B'),
      text.replace('"data":{"i":1,', '"data":{"i":1.0,'),
      text.replace('"data":{"i":1,', '"data":{"i":1E0,'),
      text.replace('"data":{"i":1,', '"data":{"i":2,"i":1,'), // JSON.parse keeps the last
    ];
    for (const form of forms) {
      const value = Buffer.from(form, 'utf8');
      expect(storedRecordView(value)).toBeUndefined();
      const { bytes, parsed } = verdicts([values[0], value, values[2]]);
      expect(bytes).toEqual(parsed);
      expect(bytes).toMatchObject({ ok: true, records: 3 });
    }
  });

  it('leaves to the parser what is not provably canonical, with the same verdict: -0, long integers, an escaped surrogate pair, invalid UTF-8', () => {
    const { values } = chain(2);
    const text = values[1].toString('utf8');
    const cases: Buffer[] = [
      Buffer.from(text.replace('"data":{"i":1,', '"data":{"i":-0,')),
      Buffer.from(text.replace('"data":{"i":1,', '"data":{"i":12345678901234567,')),
      Buffer.from(text.replace('"note":"', '"note":"\\ud83d\\ude00')),
      Buffer.concat([Buffer.from(text.slice(0, text.indexOf('"note":"') + 8)), Buffer.from([0xc0, 0x80]), Buffer.from(text.slice(text.indexOf('"note":"') + 8))]),
      Buffer.concat([Buffer.from(text.slice(0, text.indexOf('"note":"') + 8)), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(text.slice(text.indexOf('"note":"') + 8))]),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), values[1]]),
      Buffer.from(text.replace(/"hash":"([0-9a-f]{64})"/, (_, h: string) => `"hash":"${h.toUpperCase()}"`)),
      Buffer.from(text.replace('"seq":2', '"seq":0')),
      Buffer.from(text.replace('"v":1', '"v":2')),
      Buffer.from(text.replace('"id":"0193', '"id":"\\u00301')),
      Buffer.from(text.replace(/"id":"0193[^"]*"/, '"id":7')),
    ];
    for (const value of cases) {
      expect(storedRecordView(value)).toBeUndefined();
      const { bytes, parsed } = verdicts([values[0], value]);
      expect(bytes).toEqual(parsed);
      expect(bytes.ok).toBe(false);
    }
  });

  it('finds every fault from the bytes with the reason, partition and seq the parsed records give', () => {
    const { values, checkpoints } = chain(30);
    const reseal = (i: number, change: (r: AuditRecord) => AuditRecord) => {
      const r = change(JSON.parse(values[i].toString('utf8')) as AuditRecord);
      return stored({ v: 1, partition: r.partition, seq: r.seq, prev: r.prev, recordedAt: r.recordedAt, event: r.event });
    };
    const copy = [...values];
    const cases: Array<{ values: Buffer[]; checkpoints?: Checkpoint[]; reason: string; seq: number | null }> = [
      { values: copy.map((v, i) => (i === 11 ? edited(v, '"id":"u-11"', '"id":"u-12"') : v)), reason: 'content_changed', seq: 12 },
      { values: copy.map((v, i) => (i === 5 ? reseal(5, (r) => ({ ...r, prev: 'a'.repeat(64) })) : v)), reason: 'link_broken', seq: 6 },
      { values: copy.filter((_, i) => i !== 7), reason: 'gap', seq: 9 },
      { values: [...copy.slice(0, 9), copy[4], ...copy.slice(9)], reason: 'out_of_order', seq: 5 },
      { values: copy.map((v, i) => (i === 0 ? reseal(0, (r) => ({ ...r, seq: 2 })) : v)), reason: 'gap', seq: 2 },
      { values: copy.map((v, i) => (i === 20 ? reseal(20, (r) => ({ ...r, event: { ...r.event, id: `0193a000-0000-7000-8000-${String(3).padStart(12, '0')}` } })) : v)).slice(0, 21), checkpoints: [], reason: 'duplicate_event', seq: 21 },
      { values: copy.slice(0, 25), reason: 'truncated_tail', seq: 30 },
      { values: copy, checkpoints: checkpoints.map((c, i) => (i === 1 ? signCheckpoint({ v: 1, partition: 0, seq: 20, hash: 'b'.repeat(64), at: c.at, keyId: 'k1' }, privateKey) : c)), reason: 'checkpoint_mismatch', seq: 20 },
      { values: copy, checkpoints: checkpoints.map((c, i) => (i === 2 ? { ...c, seq: 29 } : c)), reason: 'bad_signature', seq: 29 },
      { values: copy.map((v, i) => (i === 3 ? Buffer.from('{"event":') : v)), reason: 'malformed', seq: null },
      { values: copy.map((v, i) => (i === 3 ? edited(v, ',"v":1}', '}') : v)), reason: 'malformed', seq: 4 },
    ];
    for (const c of cases) {
      const { bytes, parsed } = verdicts(c.values, c.checkpoints ?? checkpoints);
      expect(bytes).toEqual(parsed);
      expect(bytes.failure).toMatchObject({ reason: c.reason, seq: c.seq });
    }
    const intact = verdicts(values, checkpoints);
    expect(intact.bytes).toEqual(intact.parsed);
    expect(intact.bytes).toMatchObject({ ok: true, records: 30, checkpoints: 3 });
  });
});
