/** Generated JSON values and records for the differential tests of JCS and the byte verifier (seeded: a failure is reproducible). */

/** A small deterministic PRNG (mulberry32), so a failure is reproducible from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'z', 'A', '0', '9', ' ', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', '\u007f', 'é', '€', '\u2028', '\u2029', '\ud83d\ude00', '\ud800', '\udfff', 'Ω', '\ufeff', '_', '-', '.'];

/** Printable ASCII without escapes: keys the byte verifier reads without parsing. */
const ASCII_KEY_ALPHABET = ['a', 'z', 'A', 'Z', '0', '9', ' ', '/', '_', '-', '.', '~', '$'];

/** `asciiKeys`: object keys from ASCII_KEY_ALPHABET (else from ALPHABET, as JCS must sort any key). */
export function generator(seed: number, options: { asciiKeys?: boolean } = {}) {
  const random = prng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const string = (max = 12): string => Array.from({ length: int(max) }, () => ALPHABET[int(ALPHABET.length)]).join('');
  const number = (): number => {
    switch (int(9)) {
      case 0: return int(1000);
      case 1: return -int(1_000_000);
      case 2: return (random() - 0.5) * 10 ** (int(40) - 20);
      case 3: return random() * 1e21;
      case 4: return 1e-7 * random();
      case 5: return Number.MAX_SAFE_INTEGER - int(10);
      case 6: return -0;
      case 7: return Number.MIN_VALUE * (1 + int(5));
      default: return Number.MAX_VALUE / (1 + int(5));
    }
  };
  const asciiKey = (max: number): string => Array.from({ length: int(max) }, () => ASCII_KEY_ALPHABET[int(ASCII_KEY_ALPHABET.length)]).join('');
  const key = (): string => (int(4) === 0 ? String(int(200)) : options.asciiKeys ? asciiKey(8) : string(8));
  const value = (depth: number): unknown => {
    const pick = depth > 3 ? int(4) : int(7);
    switch (pick) {
      case 0: return string();
      case 1: return number();
      case 2: return int(3) === 0 ? null : random() < 0.5;
      case 3: return string(3);
      case 4: return Array.from({ length: int(5) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = int(7); i > 0; i--) o[key()] = value(depth + 1);
        return o;
      }
    }
  };
  const hex = () => Array.from({ length: 64 }, () => '0123456789abcdef'[int(16)]).join('');
  const record = () => ({
    v: 1,
    partition: int(12),
    seq: 1 + int(1_000_000),
    prev: hex(),
    recordedAt: new Date(int(2 ** 41)).toISOString(),
    event: {
      id: `0193${hex().slice(0, 28)}`,
      type: `${string(6)}.${string(6)}.${string(6)}`,
      source: string(8),
      tenantId: string(10),
      actor: { type: 'user', id: string(10) },
      occurredAt: new Date(int(2 ** 41)).toISOString(),
      data: value(1) as Record<string, unknown>,
      ...(int(2) === 0 ? { personal: { subjectId: string(), keyId: hex(), alg: 'A256GCM', sealed: string(40) } } : {}),
      ...(int(2) === 0 ? { [key()]: value(2) } : {}),
    },
  });
  return { value, record, int, random };
}
