import { randomBytes } from 'node:crypto';
import type { RecordedEvent } from '@palisade/audit-log';
import type { EventEnvelope, Personal } from '@palisade/contracts';
import type { Transactions } from '../audit.events';
import type { PersonalDataSealer } from '../ingest/chain-writer';
import { open, seal, type KeyEncryptionKey } from '../keys/kek';
import { keySubjectOf } from './key-subject';
import { LRUCache } from 'lru-cache';
import type { StoredSubjectKey, SubjectKeysRepository } from './subject-keys.repository';

/** The `personal` member as the audit topic holds it. */
export interface SealedPersonal {
  subjectId: string;
  keyId: string;
  alg: 'A256GCM';
  /** base64url of iv (12) || ciphertext || tag (16); associated data: the event id. */
  sealed: string;
}

/** What a reader gets back: the personal data, or the fact that it was erased. */
export type OpenedPersonal = (Personal & { erased?: false }) | { subjectId: string; erased: true };

const CACHE_MS = 10_000;
/** Live subject keys the writer keeps in memory at most (least recently used forgotten first). */
export const DEFAULT_KEY_CACHE_MAX = 10_000;

/**
 * Per-data-subject encryption of `personal` (audit-log-format.md): AES-256-GCM under the
 * subject's own key, kept in PostgreSQL wrapped by the KEK. Erasing the subject destroys
 * the key, so the ciphertext in the topic (which the hash covers) stays and verifies but
 * can no longer be read. Live keys are cached for at most 10 s by the writer, and at most
 * `cacheMax` of them (least recently used forgotten first). Which key seals what:
 * `keySubjectOf` (failed sign-ins of unknown accounts share their tenant's key).
 */
export class PersonalData implements PersonalDataSealer {
  private readonly cache: LRUCache<string, { keyId: string; key: Buffer; at: number }>;

  constructor(
    private readonly keys: Pick<SubjectKeysRepository, 'liveKeys' | 'byIds' | 'erase' | 'eraseKeys'>,
    private readonly kek: KeyEncryptionKey,
    private readonly transactions: Transactions,
    cacheMax = DEFAULT_KEY_CACHE_MAX,
  ) {
    this.cache = new LRUCache({ max: cacheMax });
  }

  /** Keys held in memory now (bounded by the cache size). */
  get cachedKeys(): number {
    return this.cache.size;
  }

  async sealAll(events: readonly EventEnvelope[]): Promise<RecordedEvent[]> {
    const now = Date.now();
    const keySubjects = events.map((e) => keySubjectOf(e));
    // This batch's keys: a batch may need more subjects than the cache holds.
    const batch = new Map<string, { keyId: string; key: Buffer }>();
    const missing: string[] = [];
    for (const s of new Set(keySubjects.filter((k): k is string => k !== undefined))) {
      const c = this.cache.get(s);
      if (c && now - c.at <= CACHE_MS) batch.set(s, c);
      else missing.push(s);
    }
    if (missing.length > 0) {
      const live = await this.transactions.inTransaction((tx) => this.keys.liveKeys(tx, missing, (keyId) => this.kek.wrap(randomBytes(32), aadOf(keyId))));
      for (const [subjectId, k] of live) {
        const entry = { keyId: k.keyId, key: this.unwrap(k)!, at: now };
        batch.set(subjectId, entry);
        this.cache.set(subjectId, entry);
      }
    }
    return events.map((e, i) => {
      if (!e.personal) return e as RecordedEvent;
      const k = batch.get(keySubjects[i]!);
      if (!k) throw new Error('no key for a data subject');
      const sealed: SealedPersonal = {
        subjectId: e.personal.subjectId,
        keyId: k.keyId,
        alg: 'A256GCM',
        sealed: seal(k.key, Buffer.from(JSON.stringify(e.personal.data), 'utf8'), e.id).toString('base64url'),
      };
      return { ...e, personal: sealed } as RecordedEvent;
    });
  }

  /** Forget cached keys of a subject (after its erasure), and these keys wherever cached. */
  forget(subjectId: string, keyIds: readonly string[] = []): void {
    this.cache.delete(subjectId);
    if (keyIds.length > 0) for (const [subject, k] of this.cache.entries()) if (keyIds.includes(k.keyId)) this.cache.delete(subject);
  }

  /**
   * Destroy every key of the subject (erasure), and `sharedKeyIds`: keys its records are
   * sealed under although they are not its own (its tenant's "unknown subjects" key; the
   * other data under that key becomes unreadable too). Another instance's writer may seal
   * with a cached key for up to 10 s more: what it seals then is unreadable at once (its
   * key is gone); after that a new key is created for data arriving later.
   */
  async erase(subjectId: string, sharedKeyIds: readonly string[] = []): Promise<number> {
    const destroyed = await this.transactions.inTransaction(
      async (tx) => (await this.keys.erase(tx, subjectId)) + (sharedKeyIds.length > 0 ? await this.keys.eraseKeys(tx, sharedKeyIds) : 0),
    );
    this.forget(subjectId, sharedKeyIds);
    return destroyed;
  }

  /** Open the `personal` members of recorded events (erased subjects read back as erased). */
  async openAll(events: readonly RecordedEvent[]): Promise<Array<OpenedPersonal | undefined>> {
    const keyIds = [...new Set(events.flatMap((e) => (isSealed(e.personal) ? [e.personal.keyId] : [])))];
    const stored = keyIds.length === 0 ? new Map<string, StoredSubjectKey>() : await this.transactions.inTransaction((tx) => this.keys.byIds(tx, keyIds));
    return events.map((e) => {
      if (!isSealed(e.personal)) return undefined;
      const k = stored.get(e.personal.keyId);
      const key = k ? this.unwrap(k) : undefined;
      if (!key) return { subjectId: e.personal.subjectId, erased: true };
      const data = JSON.parse(open(key, Buffer.from(e.personal.sealed, 'base64url'), e.id).toString('utf8')) as Record<string, unknown>;
      return { subjectId: e.personal.subjectId, data };
    });
  }

  private unwrap(k: StoredSubjectKey): Buffer | undefined {
    return k.wrapped ? this.kek.unwrap(k.wrapped, aadOf(k.keyId)) : undefined;
  }
}

const aadOf = (keyId: string) => `palisade-audit-subject-key:${keyId}`;

export function isSealed(value: unknown): value is SealedPersonal {
  const v = value as SealedPersonal | undefined;
  return !!v && typeof v === 'object' && typeof v.keyId === 'string' && typeof v.sealed === 'string' && typeof v.subjectId === 'string';
}
