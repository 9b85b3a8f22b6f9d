import { doubled } from './doubled';

/** Slots a lookup walks at most (at most half full, random ids need ~1.5 on average). */
const MAX_PROBE = 64;

/** Hex digit values by char code (−1: not a lowercase hex digit). */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let c = 0; c < 16; c++) HEX_VALUE['0123456789abcdef'.charCodeAt(c)] = c;

/**
 * The event ids a verifier has seen, for the duplicate check: exact, and in the order
 * added. An id in the canonical lowercase UUID form (what Palisade's events carry: UUIDv7)
 * is kept as its 128 bits in typed arrays, found through an open-addressing table of their
 * indexes; any other id is kept as a string. A topic's millions of ids then leave no
 * retained strings behind, which every young-generation collection copied and a
 * `Set<string>` hashed and rehashed: with two threads verifying, their collections took
 * the other core (measured: a fifth of the verifier's CPU with a string set).
 *
 * The slot hash is public and the ids come from whoever can write events: ids crafted to
 * share a slot would make each lookup walk all the earlier ones (50,000 such ids took 3.4 s
 * against 33 ms, review). So a lookup walks at most MAX_PROBE slots; a UUID that finds no
 * free slot within them is kept as a string instead, in V8's set, whose string hashes are
 * seeded at random per process.
 */
export class EventIdSet {
  /** Ids in the order added: 4 words each (a UUID's bits; unused for another id). */
  private words = new Uint32Array(4 * 1024);
  /** Per id in that order: −1 for a UUID, else its index in `others`. */
  private otherAt = new Int32Array(1024);
  private readonly others: string[] = [];
  private readonly otherSet = new Set<string>();
  /** Open addressing over the UUIDs: an id's index + 1 (0: empty), at most half full. */
  private slots = new Int32Array(2048);
  private uuids = 0;
  private walked = 0;
  /** The words of the id being added (no allocation per id). */
  private readonly parsed = new Uint32Array(4);
  private count = 0;

  /** `hash`: the slot hash of a UUID's four words (tests give a weak one to play the attacker). */
  constructor(private readonly hash: (w0: number, w1: number, w2: number, w3: number) => number = mix) {}

  get size(): number {
    return this.count;
  }

  /** Adds the id; false when it was there already (nothing added). */
  add(id: string): boolean {
    const w = this.parsed;
    if (!uuidWords(id, w)) return this.addOther(id);
    const mask = this.slots.length - 1;
    let slot = this.hash(w[0], w[1], w[2], w[3]) & mask;
    for (let probe = 0; ; probe++, slot = (slot + 1) & mask) {
      this.walked++;
      const at = this.slots[slot];
      if (at === 0) break;
      const i = (at - 1) * 4;
      if (this.words[i] === w[0] && this.words[i + 1] === w[1] && this.words[i + 2] === w[2] && this.words[i + 3] === w[3]) return false;
      // a crowded neighbourhood (crafted ids): kept as text from here on
      if (probe === MAX_PROBE) return this.addOther(id);
    }
    // a UUID sent to the strings once (its neighbourhood was full then) may find room now
    if (this.otherSet.size > 0 && this.otherSet.has(id)) return false;
    const index = this.append(-1);
    this.words.set(w, index * 4);
    this.slots[slot] = index + 1;
    if (++this.uuids * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    return true;
  }

  /** Slots walked by lookups so far (for tests of crafted input). */
  get probes(): number {
    return this.walked;
  }

  private addOther(id: string): boolean {
    if (this.otherSet.has(id)) return false;
    this.otherSet.add(id);
    this.append(this.others.push(id) - 1);
    return true;
  }

  /** The ids in the order added. */
  *values(): IterableIterator<string> {
    for (let i = 0; i < this.count; i++) yield this.otherAt[i] >= 0 ? this.others[this.otherAt[i]] : uuidOf(this.words, i * 4);
  }

  /** Room for one more id in the ordered arrays; its index. */
  private append(otherIndex: number): number {
    if (this.count === this.otherAt.length) {
      this.otherAt = doubled(this.otherAt);
      this.words = doubled(this.words);
    }
    this.otherAt[this.count] = otherIndex;
    return this.count++;
  }

  /** A table twice as large; a UUID with no free slot within MAX_PROBE of its own goes to the strings (in place: its order kept). */
  private rehash(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < this.count; i++) {
      if (this.otherAt[i] >= 0) continue;
      const w = i * 4;
      let slot = this.hash(this.words[w], this.words[w + 1], this.words[w + 2], this.words[w + 3]) & mask;
      let probe = 0;
      while (slots[slot] !== 0 && probe < MAX_PROBE) {
        slot = (slot + 1) & mask;
        probe++;
      }
      if (slots[slot] === 0) slots[slot] = i + 1;
      else {
        const id = uuidOf(this.words, w);
        this.otherSet.add(id);
        this.otherAt[i] = this.others.push(id) - 1;
        this.uuids--;
      }
    }
    this.slots = slots;
  }
}

/** `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex (any version: the bits are kept whole). */
export function isCanonicalUuid(id: string): boolean {
  return uuidWords(id, new Uint32Array(4));
}

/** The id's 128 bits into `out` when it is a canonical lowercase UUID (one pass: checked and read); false otherwise. */
function uuidWords(id: string, out: Uint32Array): boolean {
  if (id.length !== 36) return false;
  let w = 0;
  let digits = 0;
  let k = 0;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d) return false;
      continue;
    }
    const v = c < 128 ? HEX_VALUE[c] : -1;
    if (v < 0) return false;
    w = (w << 4) | v;
    if (++digits === 8) {
      out[k++] = w;
      w = 0;
      digits = 0;
    }
  }
  return true;
}

/** The UUID's words back as its canonical text. */
function uuidOf(words: Uint32Array, at: number): string {
  let hex = '';
  for (let k = 0; k < 4; k++) hex += words[at + k].toString(16).padStart(8, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A slot hash of the 128 bits (UUIDv7's first 48 are a timestamp: every word counts). */
function mix(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w3 ^ (w2 >>> 5), 0x9e3779b1);
  h = Math.imul(h ^ w1 ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ w0 ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
