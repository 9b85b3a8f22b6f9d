import { randomBytes } from 'node:crypto';
import type { RecordedEvent } from '@palisade/audit-log';
import type { EventEnvelope, Personal } from '@palisade/contracts';
import type { EntityManager } from 'typeorm';
import type { PersonalDataSealer } from '../ingest/chain-writer';
import { open, seal, type KeyEncryptionKey } from '../keys/kek';
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

/**
 * Per-data-subject encryption of `personal` (audit-log-format.md): AES-256-GCM under the
 * subject's own key, kept in PostgreSQL wrapped by the KEK. Erasing the subject destroys
 * the key, so the ciphertext in the topic (which the hash covers) stays and verifies but
 * can no longer be read. Live keys are cached for at most 10 s by the writer.
 */
export class PersonalData implements PersonalDataSealer {
  private readonly cache = new Map<string, { keyId: string; key: Buffer; at: number }>();

  constructor(
    private readonly keys: SubjectKeysRepository,
    private readonly kek: KeyEncryptionKey,
    private readonly db: () => EntityManager,
  ) {}

  async sealAll(events: readonly EventEnvelope[]): Promise<RecordedEvent[]> {
    const now = Date.now();
    const subjects = [...new Set(events.flatMap((e) => (e.personal ? [e.personal.subjectId] : [])))];
    const missing = subjects.filter((s) => {
      const c = this.cache.get(s);
      return !c || now - c.at > CACHE_MS;
    });
    if (missing.length > 0) {
      const live = await this.keys.liveKeys(this.db(), missing, (keyId) => this.kek.wrap(randomBytes(32), aadOf(keyId)));
      for (const [subjectId, k] of live) this.cache.set(subjectId, { keyId: k.keyId, key: this.unwrap(k)!, at: now });
    }
    return events.map((e) => {
      if (!e.personal) return e as RecordedEvent;
      const k = this.cache.get(e.personal.subjectId);
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

  /** Forget cached keys of a subject (after its erasure). */
  forget(subjectId: string): void {
    this.cache.delete(subjectId);
  }

  /**
   * Destroy every key of the subject (erasure). Another instance's writer may seal with a
   * cached key for up to 10 s more: what it seals then is unreadable at once (its key is
   * gone); after that a new key is created for data arriving later.
   */
  async erase(subjectId: string): Promise<number> {
    const destroyed = await this.keys.erase(this.db(), subjectId);
    this.forget(subjectId);
    return destroyed;
  }

  /** Open the `personal` members of recorded events (erased subjects read back as erased). */
  async openAll(events: readonly RecordedEvent[]): Promise<Array<OpenedPersonal | undefined>> {
    const keyIds = [...new Set(events.flatMap((e) => (isSealed(e.personal) ? [e.personal.keyId] : [])))];
    const stored = await this.keys.byIds(this.db(), keyIds);
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
