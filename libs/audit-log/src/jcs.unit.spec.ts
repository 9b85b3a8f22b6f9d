import canonicalize from 'canonicalize';
import { canonicalRecordBody, fastCanonicalJson } from './jcs';
import { generator } from '../test/generated-json';

describe('fast JCS', () => {
  it('is byte-identical to the canonicalize library over 5,000 generated JSON values (as built, parsed back, and parsed from canonical text)', () => {
    const gen = generator(20261122);
    let compared = 0;
    for (let i = 0; i < 5_000; i++) {
      const value = gen.value(0);
      const expected = canonicalize(value);
      expect(fastCanonicalJson(value)).toBe(expected);
      // What a verifier sees: the value parsed back from some (non-canonical) JSON text.
      const reparsed = JSON.parse(JSON.stringify(value));
      expect(fastCanonicalJson(reparsed)).toBe(canonicalize(reparsed));
      // Parsed back from its canonical text, as records are read from the topic: members
      // already in order (the native path), integer-like keys reordered by V8 (not).
      expect(fastCanonicalJson(JSON.parse(expected!))).toBe(expected);
      compared += 3;
    }
    expect(compared).toBe(15_000);
  });

  it('builds the body of 5,000 generated records exactly as canonicalize({v, partition, seq, prev, recordedAt, event})', () => {
    const gen = generator(7);
    for (let i = 0; i < 5_000; i++) {
      const r = gen.record();
      const body = { v: r.v, partition: r.partition, seq: r.seq, prev: r.prev, recordedAt: r.recordedAt, event: r.event };
      expect(canonicalRecordBody(r)).toBe(canonicalize(body));
      // A record read back from the topic: members in canonical order, with `hash`.
      const stored = JSON.parse(canonicalize({ ...r, hash: 'f'.repeat(64) })!) as typeof r;
      const storedBody = { v: stored.v, partition: stored.partition, seq: stored.seq, prev: stored.prev, recordedAt: stored.recordedAt, event: stored.event };
      expect(canonicalRecordBody(stored)).toBe(canonicalize(storedBody));
    }
  });

  it('does not trust property order where V8 moves integer-like keys to the front', () => {
    // Parsed from canonical text: "10" < "9" < "a" by code units, but V8 orders 9, 10, a.
    for (const text of ['{"10":1,"9":2,"a":3}', '{"0":1,"01":2,"1":3}', '{"4294967295":1,"5":2}', '{"a":{"2":1,"10":2}}', '[{"b":1,"a":2}]']) {
      expect(fastCanonicalJson(JSON.parse(text))).toBe(canonicalize(JSON.parse(text)));
    }
  });

  it('keeps a member named __proto__ (from JSON.parse) a member, in order, and a string toJSON a string', () => {
    for (const text of ['{"z":1,"__proto__":{"b":1,"a":2},"c":[{"y":1,"x":2}]}', '{"toJSON":"x","a":1}', '{"b":{"__proto__":null},"a":1}']) {
      const value = JSON.parse(text);
      expect(fastCanonicalJson(value)).toBe(canonicalize(value));
    }
    expect(fastCanonicalJson(JSON.parse('{"z":1,"__proto__":{"b":1,"a":2}}'))).toBe('{"__proto__":{"a":2,"b":1},"z":1}');
  });

  it('sorts small objects (insertion sort) and large ones (native sort) alike, shuffled, with non-ASCII and astral keys', () => {
    const gen = generator(20261206);
    const pool = ['a', 'B', 'ab', 'é', 'Z', '\u{1F600}', '\uFF21', 'z1', 'a\u0000', '_', '\u00e9t\u00e9', 'aa', '~', ' ', 'Ω', 'x'];
    for (const size of [0, 1, 2, 3, 15, 16, 17, 40]) {
      for (let round = 0; round < 50; round++) {
        const keys = Array.from({ length: size }, (_, i) => `${pool[(i * 7 + round) % pool.length]}${i % 3 === 0 ? '' : String.fromCharCode(97 + ((i + round) % 26))}${i}`);
        for (let i = keys.length - 1; i > 0; i--) {
          const j = (i * 31 + round * 17) % (i + 1);
          [keys[i], keys[j]] = [keys[j], keys[i]];
        }
        const value = Object.fromEntries(keys.map((k) => [k, gen.value(3)]));
        expect(fastCanonicalJson(value)).toBe(canonicalize(value));
      }
    }
  });

  it('sorts members by UTF-16 code units, not by code points or locale', () => {
    const value = { '\ud83d\ude00': 1, '\ufb33': 2, b: 3, B: 4, '10': 5, '9': 6, é: 7 };
    expect(fastCanonicalJson(value)).toBe(canonicalize(value));
    expect(fastCanonicalJson(value)).toBe('{"10":5,"9":6,"B":4,"b":3,"é":7,"\ud83d\ude00":1,"\ufb33":2}');
  });

  it('hands values that are not plain JSON to canonicalize (undefined members, toJSON, class instances)', () => {
    const odd = [
      { a: undefined, b: 1 },
      { at: new Date(0) },
      { nested: { toJSON: () => ({ z: 1, a: 2 }) } },
      [1, undefined, 2],
      new Map(),
    ];
    for (const value of odd) expect(fastCanonicalJson(value)).toBe(canonicalize(value));
    expect(() => fastCanonicalJson({ n: Number.NaN })).toThrow(/NaN/);
    expect(() => fastCanonicalJson(undefined)).toThrow(/no JSON representation/);
  });
});
