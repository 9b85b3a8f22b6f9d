import { randomBytes } from 'node:crypto';
import type { RecordedEvent } from '@palisade/audit-log';
import { isSubjectSealedPersonal, isTransportSealedPersonal, sealedPersonalSchema, type EventEnvelope, type Personal, type SealedPersonal, type SealPersonalRequest } from '@palisade/contracts';
import type { Transactions } from '../audit.events';
import type { PersonalDataSealer, RefuseSealed } from '../ingest/chain-writer';
import { open, seal, type KeyEncryptionKey } from '../keys/kek';
import { keySubjectOf } from './key-subject';
import { LRUCache } from 'lru-cache';
import type { StoredSubjectKey, SubjectErasure, SubjectKeysRepository } from './subject-keys.repository';
import type { TransportOpener } from './transport-opener';

/** The `personal` member as the audit topic holds it (the contract's type; producers store it so too). */
export type { SealedPersonal } from '@palisade/contracts';

/** An event to seal for its producer (SEAL_PERSONAL_SUBJECT). */
export type EventToSeal = SealPersonalRequest['events'][number];

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
  private readonly cache: LRUCache<string, SubjectKey & { at: number }>;

  constructor(
    private readonly keys: Pick<SubjectKeysRepository, 'liveKeys' | 'byIds' | 'erase' | 'eraseKeys'>,
    private readonly kek: KeyEncryptionKey,
    private readonly transactions: Transactions,
    cacheMax = DEFAULT_KEY_CACHE_MAX,
    /** Opens the members producers sealed for the audit service (none: such members are refused). */
    private readonly transport?: Pick<TransportOpener, 'openAll'>,
  ) {
    this.cache = new LRUCache({ max: cacheMax });
  }

  /** Keys held in memory now (bounded by the cache size). */
  get cachedKeys(): number {
    return this.cache.size;
  }

  /**
   * Seal the `personal` member of a producer's events before it stores them
   * (SEAL_PERSONAL_SUBJECT): the same keys, and the same format (associated data: the
   * event id), as the writer's own sealing, so the audit topic's readers open both alike.
   * One sealed member per event, in order.
   */
  async sealFor(events: readonly EventToSeal[]): Promise<SealedPersonal[]> {
    const keySubjects = events.map((e) => keySubjectOf(e)!);
    const keys = await this.liveKeysOf(keySubjects);
    return events.map((e, i) => sealWith(keys.get(keySubjects[i])!, e.id, e.personal));
  }

  /**
   * Seal the `personal` members of a batch to chain under their subjects' keys: plaintext
   * ones (audit's own events, producers that do not seal yet) and those the producer
   * sealed for the audit service (`transportSealedPersonalSchema`), once opened. A member
   * the producer had audit seal under the subject key already is chained as given once it
   * checks out (`sealedProblems`). One that does not open or check out never enters the
   * chain: `refuse(i, problems)` gives what goes in its place, and the rest of the batch
   * is chained as usual. The chain only ever holds the subject-sealed form. A plaintext or
   * opened member of an event produced before its subject's latest erasure (`occurredAt`
   * not after it: it waited in an outbox or JetStream meanwhile) is chained unreadable
   * (`sealUnreadable`), never under the subject's new key.
   */
  async sealAll(events: readonly EventEnvelope[], refuse: RefuseSealed): Promise<RecordedEvent[]> {
    const transported = events.flatMap((event, index) => (isTransportSealedPersonal(event.personal) ? [{ index, event }] : []));
    const { opened, problems: transportProblems } =
      transported.length === 0 ? { opened: new Map<number, Personal>(), problems: new Map<number, string[]>() }
      : this.transport ? await this.transport.openAll(transported)
      : { opened: new Map<number, Personal>(), problems: new Map(transported.map(({ index }) => [index, ['personal: transport-sealed, and this audit service has no transport keys']])) };
    /** The plaintext of each member to seal here (plaintext as given, or opened), by index. */
    const plaintextOf = (e: EventEnvelope, i: number): Personal | undefined =>
      opened.get(i) ?? (e.personal && !isTransportSealedPersonal(e.personal) && !isSubjectSealedPersonal(e.personal) ? e.personal : undefined);
    const keySubjects = events.map((e) => keySubjectOf(e));
    const plaintextSubjects = events.flatMap((e, i) => (plaintextOf(e, i) ? [keySubjects[i]!] : []));
    const keys = await this.liveKeysOf(plaintextSubjects);
    const problems = await this.sealedProblems(events.filter((e) => isSubjectSealedPersonal(e.personal)));
    return events.map((e, i) => {
      if (!e.personal) return e as RecordedEvent;
      const refusedInTransport = transportProblems.get(i);
      if (refusedInTransport) return refuse(i, refusedInTransport);
      if (isSubjectSealedPersonal(e.personal)) {
        const refused = problems.get(e.id);
        return refused ? refuse(i, refused) : (e as RecordedEvent);
      }
      const plaintext = plaintextOf(e, i)!;
      const k = keys.get(keySubjects[i]!);
      if (!k) throw new Error('no key for a data subject');
      if (k.lastErasure && producedBefore(e, k.lastErasure)) return { ...e, personal: sealUnreadable(k.lastErasure, e.id, plaintext) } as RecordedEvent;
      return { ...e, personal: sealWith(k, e.id, plaintext) } as RecordedEvent;
    });
  }

  /**
   * The live key of each key subject, with the subject's latest erasure: from the cache
   * (at most 10 s old; `forget` drops it on erasure), else from PostgreSQL, creating the
   * missing ones. A batch may need more subjects than the cache holds, so the batch gets
   * a map of its own.
   */
  private async liveKeysOf(keySubjects: readonly string[]): Promise<Map<string, SubjectKey>> {
    const now = Date.now();
    const keys = new Map<string, SubjectKey>();
    const missing: string[] = [];
    for (const s of new Set(keySubjects)) {
      const c = this.cache.get(s);
      if (c && now - c.at <= CACHE_MS) keys.set(s, c);
      else missing.push(s);
    }
    if (missing.length > 0) {
      const live = await this.transactions.inTransaction((tx) => this.keys.liveKeys(tx, missing, (keyId) => this.kek.wrap(randomBytes(32), aadOf(keyId))));
      for (const [subjectId, k] of live) {
        const entry = { keyId: k.keyId, key: this.unwrap(k)!, at: now, ...(k.lastErasure ? { lastErasure: k.lastErasure } : {}) };
        keys.set(subjectId, entry);
        this.cache.set(subjectId, entry);
      }
    }
    return keys;
  }

  /**
   * Why the producer-sealed members of these events must not be chained, by event id
   * (none: fine). A producer may lie, so each must name a key that exists, belongs to the
   * event's key subject (`keySubjectOf`), and, while the key lives, open under it with the
   * event id (else it was made for another event, or altered). An erased key cannot be
   * checked, and whatever it sealed is unreadable anyway.
   */
  private async sealedProblems(events: readonly EventEnvelope[]): Promise<Map<string, string[]>> {
    const problems = new Map<string, string[]>();
    const toCheck: Array<{ event: EventEnvelope; sealed: SealedPersonal; keySubject: string }> = [];
    for (const event of events) {
      const parsed = sealedPersonalSchema.safeParse(event.personal);
      if (!parsed.success) problems.set(event.id, ['personal: not a sealed member (subjectId, keyId, alg A256GCM, sealed)']);
      else toCheck.push({ event, sealed: parsed.data, keySubject: keySubjectOf(event)! });
    }
    const now = Date.now();
    const cachedKey = (c: (typeof toCheck)[number]) => {
      const k = this.cache.get(c.keySubject);
      return k && now - k.at <= CACHE_MS && k.keyId === c.sealed.keyId ? k.key : undefined;
    };
    const unknownIds = [...new Set(toCheck.filter((c) => !cachedKey(c)).map((c) => c.sealed.keyId))];
    const stored = unknownIds.length === 0 ? new Map<string, StoredSubjectKey>() : await this.transactions.inTransaction((tx) => this.keys.byIds(tx, unknownIds));
    for (const c of toCheck) {
      let key = cachedKey(c);
      if (!key) {
        const row = stored.get(c.sealed.keyId);
        if (!row) {
          problems.set(c.event.id, ['personal.keyId: no such data subject key']);
          continue;
        }
        if (row.subjectId !== c.keySubject) {
          problems.set(c.event.id, ["personal.keyId: the key of another data subject than the event's"]);
          continue;
        }
        if (!row.wrapped) continue;
        key = this.unwrap(row)!;
      }
      if (!opens(key, c.sealed.sealed, c.event.id)) problems.set(c.event.id, ['personal.sealed: does not open under its key with this event id (sealed for another event, or altered)']);
    }
    return problems;
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

/** A live subject key, unwrapped, with its subject's latest erasure (none: never erased). */
interface SubjectKey {
  keyId: string;
  key: Buffer;
  lastErasure?: SubjectErasure;
}

/**
 * Whether the event was produced before (or at) the erasure: its `occurredAt` is not
 * after it. Such an event waited (a producer's outbox, JetStream) while its subject was
 * erased; sealing its personal data under the subject's new key would undo the erasure.
 * An `occurredAt` that does not parse counts as before (unreadable rather than revived).
 */
function producedBefore(event: Pick<EventEnvelope, 'occurredAt'>, erasure: SubjectErasure): boolean {
  const occurred = Date.parse(event.occurredAt);
  return !(occurred > erasure.erasedAt.getTime());
}

/**
 * The member of an event produced before its subject's erasure, chained unreadable: sealed
 * (the one format, `sealWith`) under a fresh random key that is never stored, named by
 * the erased key's id, so readers (`openAll`) report it erased like the data sealed
 * before the erasure.
 */
function sealUnreadable(erasure: SubjectErasure, eventId: string, personal: Personal): SealedPersonal {
  const key = randomBytes(32);
  try {
    return sealWith({ keyId: erasure.keyId, key }, eventId, personal);
  } finally {
    key.fill(0);
  }
}

const aadOf = (keyId: string) => `palisade-audit-subject-key:${keyId}`;

/** The one sealing of a `personal` member (audit-log-format.md): associated data = the event id, so it cannot be moved. */
function sealWith(k: SubjectKey, eventId: string, personal: Personal): SealedPersonal {
  return {
    subjectId: personal.subjectId,
    keyId: k.keyId,
    alg: 'A256GCM',
    sealed: seal(k.key, Buffer.from(JSON.stringify(personal.data), 'utf8'), eventId).toString('base64url'),
  };
}

function opens(key: Buffer, sealed: string, eventId: string): boolean {
  try {
    open(key, Buffer.from(sealed, 'base64url'), eventId);
    return true;
  } catch {
    return false;
  }
}

export function isSealed(value: unknown): value is SealedPersonal {
  const v = value as SealedPersonal | undefined;
  return !!v && typeof v === 'object' && typeof v.keyId === 'string' && typeof v.sealed === 'string' && typeof v.subjectId === 'string';
}
