import { randomBytes, randomUUID } from 'node:crypto';
import { buildEvent, newEventId, type EventEnvelope } from '@palisade/contracts';
import type { Transaction } from '@palisade/eventsourcing';
import { KeyEncryptionKey } from '../keys/kek';
import { keySubjectOf, sharedKeySubject } from './key-subject';
import { PersonalData, type SealedPersonal } from './personal-data';
import type { StoredSubjectKey, SubjectKeysRepository } from './subject-keys.repository';

/** The key table in memory: one live key per subject, created on first use, as the repository does. */
class MemoryKeys {
  readonly rows = new Map<string, StoredSubjectKey>();
  created = 0;
  async liveKeys(_tx: Transaction, subjectIds: readonly string[], wrapNew: (keyId: string) => Buffer): Promise<Map<string, StoredSubjectKey>> {
    const out = new Map<string, StoredSubjectKey>();
    for (const subjectId of subjectIds) {
      let row = [...this.rows.values()].find((r) => r.subjectId === subjectId && r.wrapped);
      if (!row) {
        const keyId = randomUUID();
        row = { keyId, subjectId, wrapped: wrapNew(keyId) };
        this.rows.set(keyId, row);
        this.created++;
      }
      out.set(subjectId, row);
    }
    return out;
  }
  async byIds(_tx: Transaction, keyIds: readonly string[]) {
    return new Map(keyIds.flatMap((id) => (this.rows.has(id) ? [[id, this.rows.get(id)!] as const] : [])));
  }
  async erase(_tx: Transaction, subjectId: string) {
    let n = 0;
    for (const r of this.rows.values()) {
      if (r.subjectId === subjectId && r.wrapped) {
        r.wrapped = null;
        n++;
      }
    }
    return n;
  }
  async eraseKeys(_tx: Transaction, keyIds: readonly string[]) {
    let n = 0;
    for (const id of keyIds) {
      const r = this.rows.get(id);
      if (r?.wrapped) {
        r.wrapped = null;
        n++;
      }
    }
    return n;
  }
}

const ctx = { source: 'auth' as const, now: () => new Date(), newId: () => newEventId() };
const failedSignIn = (tenantId: string, username: string): EventEnvelope =>
  buildEvent(ctx, {
    type: 'auth.user.sign-in-failed',
    tenantId,
    actor: { type: 'user', id: `unknown-${username}` },
    data: { userId: null, method: 'password', reason: 'bad_credentials' },
    personal: { subjectId: `unknown-${username}`, data: { username, sourceAddress: '192.0.2.1' } },
  });
const signedIn = (tenantId: string, userId: string): EventEnvelope =>
  buildEvent(ctx, { type: 'auth.user.signed-in', tenantId, actor: { type: 'user', id: userId }, data: { userId }, personal: { subjectId: userId, data: { sourceAddress: '192.0.2.2' } } });

function personalData(cacheMax?: number) {
  const keys = new MemoryKeys();
  const data = new PersonalData(keys as unknown as SubjectKeysRepository, KeyEncryptionKey.fromBytes(randomBytes(32)), { inTransaction: (work) => work({} as Transaction) }, cacheMax);
  return { keys, data };
}

describe('PersonalData key cache and key subjects', () => {
  it('keeps at most AUDIT_SUBJECT_KEY_CACHE_MAX keys in memory, and still seals a batch with more subjects than that', async () => {
    const { data, keys } = personalData(50);
    const events = Array.from({ length: 400 }, (_, i) => signedIn('t1', `user-${i}`));
    const sealed = await data.sealAll(events);
    expect(data.cachedKeys).toBe(50);
    expect(keys.created).toBe(400);
    expect(sealed.every((e) => typeof (e.personal as unknown as SealedPersonal).keyId === 'string')).toBe(true);
    const opened = await data.openAll(sealed);
    expect(opened[399]).toEqual({ subjectId: 'user-399', data: { sourceAddress: '192.0.2.2' } });
  });

  it('a spray of unknown usernames at sign-in creates one key per tenant, not one per name, and still reads back', async () => {
    const { data, keys } = personalData();
    const spray = Array.from({ length: 1000 }, (_, i) => failedSignIn(i % 2 === 0 ? 'tenant-a' : 'tenant-b', `guess${i}`));
    const sealed = await data.sealAll(spray);
    expect(keys.created).toBe(2);
    expect([...keys.rows.values()].map((r) => r.subjectId).sort()).toEqual([sharedKeySubject('tenant-a'), sharedKeySubject('tenant-b')]);
    expect(data.cachedKeys).toBe(2);
    // The record still names the subject the producer gave.
    expect((sealed[7].personal as unknown as SealedPersonal).subjectId).toBe('unknown-guess7');
    expect((await data.openAll([sealed[7]]))[0]).toEqual({ subjectId: 'unknown-guess7', data: { username: 'guess7', sourceAddress: '192.0.2.1' } });
    // A known account keeps a key of its own.
    await data.sealAll([signedIn('tenant-a', 'alice')]);
    expect(keys.created).toBe(3);
  });

  it('erasing an unknown-account subject destroys the shared key its records use: they read back as erased; new data gets a new key', async () => {
    const { data, keys } = personalData();
    const [first] = await data.sealAll([failedSignIn('tenant-a', 'typo')]);
    const keyId = (first.personal as unknown as SealedPersonal).keyId;
    expect(await data.erase('unknown-typo', [keyId])).toBe(1);
    expect((await data.openAll([first]))[0]).toEqual({ subjectId: 'unknown-typo', erased: true });
    const [later] = await data.sealAll([failedSignIn('tenant-a', 'other')]);
    expect((later.personal as unknown as SealedPersonal).keyId).not.toBe(keyId);
    expect(keys.created).toBe(2);
  });

  it('a subject id PostgreSQL cannot store (NUL, lone surrogate) shares its tenant key instead of stalling the writer', async () => {
    const { data } = personalData();
    const bad = [signedIn('t1', 'a\u0000b'), signedIn('t1', '\ud800')];
    const sealed = await data.sealAll(bad);
    expect(sealed.map((e) => (e.personal as unknown as SealedPersonal).subjectId)).toEqual(['a\u0000b', '\ud800']);
    expect(keySubjectOf(bad[0])).toBe(sharedKeySubject('t1'));
    expect(keySubjectOf(signedIn('t1', 'alice'))).toBe('alice');
  });
});
