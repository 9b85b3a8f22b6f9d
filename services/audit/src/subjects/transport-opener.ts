import { transportSealedPersonalSchema, type EventEnvelope, type Personal } from '@palisade/contracts';
import { openTransportSealed, transportEpochKey } from '@palisade/nats';
import { LRUCache } from 'lru-cache';
import type { TransportKeys } from '../keys/transport-keys';

/** Producer epochs whose exported key the writer keeps in memory at most (least recently used forgotten first). */
export const DEFAULT_EPOCH_KEY_CACHE_MAX = 1024;

/** What became of the transport-sealed members of a batch, by index in the batch. */
export interface OpenedMembers {
  opened: Map<number, Personal>;
  problems: Map<number, string[]>;
}

/** How long a kid found to name no key (unknown, or destroyed) is refused without asking again. */
export const UNKNOWN_KID_MS = 30_000;
/** Unknown kids remembered at most (least recently used forgotten first). */
export const UNKNOWN_KID_CACHE_MAX = 256;
/** Distinct kids of one batch looked up and found unknown before the batch's other new kids are refused unasked. */
export const MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH = 8;
/** Kids recently found to name a key: always looked up, even after a batch's unknown-kid limit. */
const KNOWN_KID_CACHE_MAX = 64;

type EpochKey = Buffer | 'unknown-kid' | 'bad-enc';

/**
 * Opens the `personal` members producers sealed for the audit service
 * (`transportSealedPersonalSchema`) at ingest: the private key `kid` names decapsulates
 * each epoch's `enc` once, and its exported key is kept in a bounded LRU (by kid and enc),
 * so a producer's epoch costs one X25519 operation here. A member that does not open
 * (unknown or destroyed key, altered, sealed for another event id, tenant, source, type
 * or subject) gets a problem instead; no key or plaintext is ever in a problem.
 *
 * Forged members cannot slow ingest much: per batch each distinct kid is looked up once
 * and each distinct (kid, enc) decapsulated at most once; a kid found unknown is refused
 * without asking again for `UNKNOWN_KID_MS` (a bounded LRU); and once
 * `MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH` distinct kids of a batch turned out unknown, its
 * other kids are refused without a lookup unless recently seen to name a key or the key
 * served to producers now (a member of a key retired before this instance ever saw it,
 * in such a batch, is refused: the price of the bound).
 */
export class TransportOpener {
  private readonly epochKeys: LRUCache<string, Buffer>;
  private readonly unknownKids = new LRUCache<string, true>({ max: UNKNOWN_KID_CACHE_MAX, ttl: UNKNOWN_KID_MS });
  private readonly knownKids = new LRUCache<string, true>({ max: KNOWN_KID_CACHE_MAX });

  constructor(
    /** `publicKeys` (optional): the current key stays openable past a batch's unknown-kid limit even before this instance has seen it. */
    private readonly keys: Pick<TransportKeys, 'privateKey'> & Partial<Pick<TransportKeys, 'publicKeys'>>,
    cacheMax = DEFAULT_EPOCH_KEY_CACHE_MAX,
  ) {
    this.epochKeys = new LRUCache({ max: cacheMax });
  }

  /** Epoch keys held in memory now. */
  get cachedEpochs(): number {
    return this.epochKeys.size;
  }

  async openAll(members: ReadonlyArray<{ index: number; event: EventEnvelope }>): Promise<OpenedMembers> {
    const opened = new Map<number, Personal>();
    const problems = new Map<number, string[]>();
    const batch: Batch = { privateKeys: new Map(), epochKeys: new Map(), unknownLookups: 0 };
    for (const { index, event } of members) {
      const parsed = transportSealedPersonalSchema.safeParse(event.personal);
      if (!parsed.success) {
        problems.set(index, ['personal: not a transport-sealed member (subjectId, alg, kid, enc, nonce, ct)']);
        continue;
      }
      const member = parsed.data;
      const epochKey = await this.epochKey(batch, member.kid, member.enc);
      if (epochKey === 'unknown-kid') {
        problems.set(index, ['personal.kid: no such audit transport key (unknown, or destroyed after its grace period)']);
        continue;
      }
      if (epochKey === 'bad-enc') {
        problems.set(index, ['personal.enc: not an encapsulated key for its audit transport key']);
        continue;
      }
      try {
        opened.set(index, { subjectId: member.subjectId, data: openTransportSealed(epochKey, event, member) });
        // kept once a member opened with it: a forger's made-up encapsulations never evict real epochs
        this.epochKeys.set(`${member.kid}.${member.enc}`, epochKey);
      } catch {
        problems.set(index, ['personal.ct: does not open under its audit transport key for this event (sealed for another event id, tenant, source, type or subject, or altered)']);
      }
    }
    return { opened, problems };
  }

  toJSON(): string {
    return '[TransportOpener]';
  }

  private epochKey(batch: Batch, kid: string, enc: string): Promise<EpochKey> {
    const id = `${kid}.${enc}`;
    let p = batch.epochKeys.get(id);
    if (!p) {
      p = this.resolveEpochKey(batch, kid, enc);
      batch.epochKeys.set(id, p);
    }
    return p;
  }

  private async resolveEpochKey(batch: Batch, kid: string, enc: string): Promise<EpochKey> {
    // The private key first, even for a cached epoch: a destroyed key must stop opening.
    // TransportKeys caches it for ~30 s, so another instance may still hold an unwrapped
    // key (and open with it) up to that long after its destruction.
    const privateKey = await this.privateKey(batch, kid);
    if (!privateKey) return 'unknown-kid';
    const cached = this.epochKeys.get(`${kid}.${enc}`);
    if (cached) return cached;
    try {
      return await transportEpochKey(privateKey, enc);
    } catch {
      return 'bad-enc';
    }
  }

  /** The private key `kid` names, once per batch; none (unknown or destroyed): its cached epoch keys dropped. */
  private privateKey(batch: Batch, kid: string): Promise<Buffer | undefined> {
    let p = batch.privateKeys.get(kid);
    if (!p) {
      p = this.lookUp(batch, kid);
      batch.privateKeys.set(kid, p);
    }
    return p;
  }

  private async lookUp(batch: Batch, kid: string): Promise<Buffer | undefined> {
    if (this.unknownKids.get(kid)) return undefined; // its epochs were dropped when it was found unknown
    if (batch.unknownLookups >= MAX_UNKNOWN_KID_LOOKUPS_PER_BATCH && !this.knownKids.get(kid) && !(await this.isCurrent(kid))) return undefined;
    const key = await this.keys.privateKey(kid);
    if (key) {
      this.knownKids.set(kid, true);
      return key;
    }
    batch.unknownLookups++;
    this.knownKids.delete(kid);
    this.unknownKids.set(kid, true);
    return this.forgetEpochsOf(kid);
  }

  /** Whether `kid` is the key served to producers now (TransportKeys caches it 30 s). */
  private async isCurrent(kid: string): Promise<boolean> {
    if (!this.keys.publicKeys) return false;
    try {
      return (await this.keys.publicKeys()).keys.some((k) => k.kid === kid);
    } catch {
      return false;
    }
  }

  private forgetEpochsOf(kid: string): undefined {
    for (const id of [...this.epochKeys.keys()]) if (id.startsWith(`${kid}.`)) this.epochKeys.delete(id);
    return undefined;
  }
}

/** What one `openAll` call has looked up and decapsulated (promises: one per distinct value). */
interface Batch {
  privateKeys: Map<string, Promise<Buffer | undefined>>;
  epochKeys: Map<string, Promise<EpochKey>>;
  unknownLookups: number;
}
