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

/**
 * Opens the `personal` members producers sealed for the audit service
 * (`transportSealedPersonalSchema`) at ingest: the private key `kid` names decapsulates
 * each epoch's `enc` once, and its exported key is kept in a bounded LRU (by kid and enc),
 * so a producer's epoch costs one X25519 operation here. A member that does not open
 * (unknown or destroyed key, altered, sealed for another event or subject) gets a problem
 * instead; no key or plaintext is ever in a problem.
 */
export class TransportOpener {
  private readonly epochKeys: LRUCache<string, Buffer>;

  constructor(
    private readonly keys: Pick<TransportKeys, 'privateKey'>,
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
    for (const { index, event } of members) {
      const parsed = transportSealedPersonalSchema.safeParse(event.personal);
      if (!parsed.success) {
        problems.set(index, ['personal: not a transport-sealed member (subjectId, alg, kid, enc, nonce, ct)']);
        continue;
      }
      const member = parsed.data;
      const epochKey = await this.epochKey(member.kid, member.enc);
      if (epochKey === 'unknown-kid') {
        problems.set(index, ['personal.kid: no such audit transport key (unknown, or destroyed after its grace period)']);
        continue;
      }
      if (epochKey === 'bad-enc') {
        problems.set(index, ['personal.enc: not an encapsulated key for its audit transport key']);
        continue;
      }
      try {
        opened.set(index, { subjectId: member.subjectId, data: openTransportSealed(epochKey, event.id, member) });
        // kept once a member opened with it: a forger's made-up encapsulations never evict real epochs
        this.epochKeys.set(`${member.kid}.${member.enc}`, epochKey);
      } catch {
        problems.set(index, ['personal.ct: does not open under its audit transport key with this event id and subject (sealed for another event, or altered)']);
      }
    }
    return { opened, problems };
  }

  toJSON(): string {
    return '[TransportOpener]';
  }

  private async epochKey(kid: string, enc: string): Promise<Buffer | 'unknown-kid' | 'bad-enc'> {
    const cached = this.epochKeys.get(`${kid}.${enc}`);
    if (cached) return cached;
    const privateKey = await this.keys.privateKey(kid);
    if (!privateKey) return 'unknown-kid';
    try {
      return await transportEpochKey(privateKey, enc);
    } catch {
      return 'bad-enc';
    }
  }
}
