import { randomBytes, randomUUID } from 'node:crypto';
import type { RecordedEvent } from '@palisade/audit-log';
import { buildEvent, isSubjectSealedPersonal, newEventId, type EventEnvelope, type Personal, type TransportSealedPersonal } from '@palisade/contracts';
import { generateTransportKeyPair, transportKeyId, TransportSealingEpoch } from '@palisade/nats';
import type { Transaction } from '@palisade/eventsourcing';
import { KeyEncryptionKey } from '../keys/kek';
import { keySubjectOf, sharedKeySubject } from './key-subject';
import { PersonalData, type SealedPersonal } from './personal-data';
import type { StoredSubjectKey, SubjectKeysRepository } from './subject-keys.repository';
import { TransportOpener } from './transport-opener';

/** The key table in memory: one live key per subject, created on first use, as the repository does. */
class MemoryKeys {
  readonly rows = new Map<string, StoredSubjectKey & { erasedAt?: Date }>();
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
      const erased = [...this.rows.values()].filter((r) => r.subjectId === subjectId && r.erasedAt).sort((a, b) => b.erasedAt!.getTime() - a.erasedAt!.getTime())[0];
      out.set(subjectId, erased ? { ...row, lastErasure: { keyId: erased.keyId, erasedAt: erased.erasedAt! } } : row);
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
        r.erasedAt = new Date();
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
        r.erasedAt = new Date();
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

/** Sealing plaintext never refuses. */
const noRefusal = (): RecordedEvent => {
  throw new Error('refused');
};

describe('PersonalData key cache and key subjects', () => {
  it('keeps at most AUDIT_SUBJECT_KEY_CACHE_MAX keys in memory, and still seals a batch with more subjects than that', async () => {
    const { data, keys } = personalData(50);
    const events = Array.from({ length: 400 }, (_, i) => signedIn('t1', `user-${i}`));
    const sealed = await data.sealAll(events, noRefusal);
    expect(data.cachedKeys).toBe(50);
    expect(keys.created).toBe(400);
    expect(sealed.every((e) => typeof (e.personal as unknown as SealedPersonal).keyId === 'string')).toBe(true);
    const opened = await data.openAll(sealed);
    expect(opened[399]).toEqual({ subjectId: 'user-399', data: { sourceAddress: '192.0.2.2' } });
  });

  it('a spray of unknown usernames at sign-in creates one key per tenant, not one per name, and still reads back', async () => {
    const { data, keys } = personalData();
    const spray = Array.from({ length: 1000 }, (_, i) => failedSignIn(i % 2 === 0 ? 'tenant-a' : 'tenant-b', `guess${i}`));
    const sealed = await data.sealAll(spray, noRefusal);
    expect(keys.created).toBe(2);
    expect([...keys.rows.values()].map((r) => r.subjectId).sort()).toEqual([sharedKeySubject('tenant-a'), sharedKeySubject('tenant-b')]);
    expect(data.cachedKeys).toBe(2);
    // The record still names the subject the producer gave.
    expect((sealed[7].personal as unknown as SealedPersonal).subjectId).toBe('unknown-guess7');
    expect((await data.openAll([sealed[7]]))[0]).toEqual({ subjectId: 'unknown-guess7', data: { username: 'guess7', sourceAddress: '192.0.2.1' } });
    // A known account keeps a key of its own.
    await data.sealAll([signedIn('tenant-a', 'alice')], noRefusal);
    expect(keys.created).toBe(3);
  });

  it('erasing an unknown-account subject destroys the shared key its records use: they read back as erased; new data gets a new key', async () => {
    const { data, keys } = personalData();
    const [first] = await data.sealAll([failedSignIn('tenant-a', 'typo')], noRefusal);
    const keyId = (first.personal as unknown as SealedPersonal).keyId;
    expect(await data.erase('unknown-typo', [keyId])).toBe(1);
    expect((await data.openAll([first]))[0]).toEqual({ subjectId: 'unknown-typo', erased: true });
    await new Promise((r) => setTimeout(r, 5)); // produced after the erasure (one produced at or before it is chained unreadable)
    const [later] = await data.sealAll([failedSignIn('tenant-a', 'other')], noRefusal);
    expect((later.personal as unknown as SealedPersonal).keyId).not.toBe(keyId);
    expect(keys.created).toBe(2);
  });

  it('an event produced before its subject was erased but ingested after is chained unreadable (as erased), not under the new key; a later one is readable', async () => {
    const { data } = personalData();
    const [first] = await data.sealAll([signedIn('t1', 'alice')], noRefusal);
    const erasedKeyId = (first.personal as unknown as SealedPersonal).keyId;
    const waited = { ...signedIn('t1', 'alice'), occurredAt: new Date(Date.now() - 60_000).toISOString() };
    await new Promise((r) => setTimeout(r, 5));
    expect(await data.erase('alice')).toBe(1);
    await new Promise((r) => setTimeout(r, 5));
    const later = signedIn('t1', 'alice');
    const [old, fresh] = await data.sealAll([waited, later], noRefusal);
    expect((old.personal as unknown as SealedPersonal).keyId).toBe(erasedKeyId);
    expect(JSON.stringify(old)).not.toContain('192.0.2.2');
    expect(await data.openAll([old, fresh])).toEqual([
      { subjectId: 'alice', erased: true },
      { subjectId: 'alice', data: { sourceAddress: '192.0.2.2' } },
    ]);
    // the cached entry carries the erasure too (no PostgreSQL read)
    const [again] = await data.sealAll([{ ...signedIn('t1', 'alice'), occurredAt: waited.occurredAt }], noRefusal);
    expect(await data.openAll([again])).toEqual([{ subjectId: 'alice', erased: true }]);
  });

  it('a subject id PostgreSQL cannot store (NUL, lone surrogate) shares its tenant key instead of stalling the writer', async () => {
    const { data } = personalData();
    const bad = [signedIn('t1', 'a\u0000b'), signedIn('t1', '\ud800')];
    const sealed = await data.sealAll(bad, noRefusal);
    expect(sealed.map((e) => (e.personal as unknown as SealedPersonal).subjectId)).toEqual(['a\u0000b', '\ud800']);
    expect(keySubjectOf(bad[0])).toBe(sharedKeySubject('t1'));
    expect(keySubjectOf(signedIn('t1', 'alice'))).toBe('alice');
  });
});

describe('PersonalData sealing for producers (sealFor) and producer-sealed events at ingest', () => {
  /** Two audit instances over one key table and one KEK: the one that answers the RPC and the writer. */
  function twoInstances() {
    const keys = new MemoryKeys();
    const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
    const tx = { inTransaction: <T>(work: (tx: Transaction) => Promise<T>) => work({} as Transaction) };
    return { keys, rpc: new PersonalData(keys as unknown as SubjectKeysRepository, kek, tx), writer: new PersonalData(keys as unknown as SubjectKeysRepository, kek, tx) };
  }
  /** What the producer stores: the event with `personal` replaced by audit's answer. */
  async function producerSealed(rpc: PersonalData, event: EventEnvelope): Promise<EventEnvelope> {
    const [sealed] = await rpc.sealFor([{ id: event.id, type: event.type, tenantId: event.tenantId, data: event.data, personal: event.personal as Personal }]);
    return { ...event, personal: sealed };
  }
  const REFUSED = (i: number, problems: string[]) => ({ refusedIndex: i, problems }) as unknown as RecordedEvent;

  it('seals in the topic format: openAll reads it back, under the same key sealAll uses', async () => {
    const { rpc, writer } = twoInstances();
    const event = signedIn('t1', 'alice');
    const stored = await producerSealed(rpc, event);
    expect(stored.personal).toEqual({ subjectId: 'alice', keyId: expect.any(String), alg: 'A256GCM', sealed: expect.stringMatching(/^[A-Za-z0-9_-]+$/) });
    expect(JSON.stringify(stored)).not.toContain('192.0.2.2');
    expect(await writer.openAll([stored as RecordedEvent])).toEqual([{ subjectId: 'alice', data: { sourceAddress: '192.0.2.2' } }]);
    const [byWriter] = await writer.sealAll([signedIn('t1', 'alice')], noRefusal);
    expect((byWriter.personal as SealedPersonal).keyId).toBe((stored.personal as SealedPersonal).keyId);
    // Failed sign-ins of unknown accounts share the tenant key, as at ingest.
    const spray = await Promise.all([failedSignIn('t1', 'a'), failedSignIn('t1', 'b')].map((e) => producerSealed(rpc, e)));
    expect(new Set(spray.map((e) => (e.personal as SealedPersonal).keyId)).size).toBe(1);
  });

  it('a producer-sealed event is chained as given, not sealed again, whether the writer has its key cached or not', async () => {
    const { rpc, writer } = twoInstances();
    const stored = await producerSealed(rpc, signedIn('t1', 'alice'));
    const unknown = await producerSealed(rpc, failedSignIn('t1', 'nobody'));
    const chained = await writer.sealAll([stored, unknown], noRefusal);
    expect(chained).toEqual([stored, unknown]);
    expect(await writer.sealAll([stored], noRefusal)).toEqual([stored]); // key now cached
  });

  it('an erased subject: its producer-sealed blob is chained and reads back as erased', async () => {
    const { rpc, writer } = twoInstances();
    const stored = await producerSealed(rpc, signedIn('t1', 'alice'));
    expect(await writer.erase('alice')).toBe(1);
    const [chained] = await writer.sealAll([stored], noRefusal);
    expect(await writer.openAll([chained])).toEqual([{ subjectId: 'alice', erased: true }]);
  });

  it('refuses a forged sealed member (key of another subject, blob of another event, garbage, unknown key) and chains the good events of the batch', async () => {
    const { rpc, writer } = twoInstances();
    const good = await producerSealed(rpc, signedIn('t1', 'alice'));
    const plaintext = signedIn('t1', 'carol');
    const bobEvent = signedIn('t1', 'bob');
    // Sealed under alice's key for bob's event id, then labelled bob.
    const [aliceKeyForBob] = await rpc.sealFor([{ id: bobEvent.id, type: bobEvent.type, tenantId: 't1', data: {}, personal: { subjectId: 'alice', data: { sourceAddress: '203.0.113.9' } } }]);
    const otherSubjectsKey = { ...bobEvent, personal: { ...aliceKeyForBob, subjectId: 'bob' } };
    const alicesOther = signedIn('t1', 'alice');
    const moved = { ...alicesOther, personal: good.personal }; // alice's blob of another event
    const garbage = { ...signedIn('t1', 'alice'), personal: { ...(good.personal as SealedPersonal), sealed: randomBytes(40).toString('base64url') } };
    const unknownKey = { ...signedIn('t1', 'alice'), personal: { ...(good.personal as SealedPersonal), keyId: randomUUID() } };

    const chained = await writer.sealAll([otherSubjectsKey, good, moved, plaintext, garbage, unknownKey], REFUSED);

    expect(chained[1]).toEqual(good);
    expect((await writer.openAll([chained[3]]))[0]).toEqual({ subjectId: 'carol', data: { sourceAddress: '192.0.2.2' } });
    const refusals = [chained[0], chained[2], chained[4], chained[5]] as unknown as Array<{ refusedIndex: number; problems: string[] }>;
    expect(refusals.map((r) => r.refusedIndex)).toEqual([0, 2, 4, 5]);
    expect(refusals[0].problems[0]).toMatch(/another data subject/);
    expect(refusals[1].problems[0]).toMatch(/does not open/);
    expect(refusals[2].problems[0]).toMatch(/does not open/);
    expect(refusals[3].problems[0]).toMatch(/no such data subject key/);
    // The problems name no personal data.
    expect(JSON.stringify(refusals)).not.toMatch(/alice|bob|203\.0\.113/);
  });

  it('checks a sealed member against the key the writer has cached too (a blob moved to another event is refused)', async () => {
    const { rpc, writer } = twoInstances();
    const good = await producerSealed(rpc, signedIn('t1', 'alice'));
    await writer.sealAll([good], noRefusal); // the writer now has alice's key in memory
    const moved = { ...signedIn('t1', 'alice'), personal: good.personal };
    const [chained] = await writer.sealAll([moved], REFUSED);
    expect(chained).toEqual({ refusedIndex: 0, problems: [expect.stringMatching(/does not open/)] });
  });
});

describe('PersonalData: members producers sealed for the audit service (transport sealing)', () => {
  const REFUSED = (i: number, problems: string[]) => ({ refusedIndex: i, problems }) as unknown as RecordedEvent;

  /** An audit instance with transport keys in memory (`privateKey` counted: one decapsulation per epoch), and a producer's epoch to them. */
  async function setUp() {
    const pair = await generateTransportKeyPair();
    const kid = transportKeyId(pair.publicKey);
    const privateKeys = new Map([[kid, pair.privateKey]]);
    const asked: string[] = [];
    const transportKeys = {
      privateKey: async (k: string) => {
        asked.push(k);
        return privateKeys.get(k);
      },
    };
    const keys = new MemoryKeys();
    const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
    const tx = { inTransaction: <T>(work: (tx: Transaction) => Promise<T>) => work({} as Transaction) };
    const writer = new PersonalData(keys as unknown as SubjectKeysRepository, kek, tx, undefined, new TransportOpener(transportKeys));
    const epoch = await TransportSealingEpoch.start(kid, pair.publicKey, Date.now());
    const sealed = (e: EventEnvelope, by = epoch): EventEnvelope => ({ ...e, personal: by.seal(e, e.personal as Personal) });
    return { kid, pair, privateKeys, asked, keys, writer, epoch, sealed, kek, tx };
  }

  it('opens a member at ingest and chains it sealed under the subject key, as a plaintext member would be: the topic never holds the transport form', async () => {
    const { writer, sealed } = await setUp();
    const event = signedIn('t1', 'alice');
    const [chained] = await writer.sealAll([sealed(event)], REFUSED);
    expect(isSubjectSealedPersonal(chained.personal as never)).toBe(true);
    expect(Object.keys(chained.personal as object)).toEqual(['subjectId', 'keyId', 'alg', 'sealed']);
    expect({ ...chained, personal: undefined }).toEqual({ ...event, personal: undefined });
    expect(await writer.openAll([chained])).toEqual([{ subjectId: 'alice', data: { sourceAddress: '192.0.2.2' } }]);
    // the same subject key as the plaintext path uses
    const [plain] = await writer.sealAll([signedIn('t1', 'alice')], REFUSED);
    expect((plain.personal as SealedPersonal).keyId).toBe((chained.personal as SealedPersonal).keyId);
    // the shared key of unknown subjects (keySubjectOf) applies as well
    const spray = await writer.sealAll([sealed(failedSignIn('t1', 'guess1')), sealed(failedSignIn('t1', 'guess2'))], REFUSED);
    expect(new Set(spray.map((e) => (e.personal as SealedPersonal).keyId)).size).toBe(1);
  });

  it('decapsulates once per producer epoch (kept in a bounded LRU), not once per member; the keys are in nothing serialized', async () => {
    const { writer, sealed, asked, kid, pair } = await setUp();
    const other = await TransportSealingEpoch.start(kid, pair.publicKey, Date.now());
    await writer.sealAll([sealed(signedIn('t1', 'a')), sealed(signedIn('t1', 'b')), sealed(signedIn('t1', 'c'), other)], REFUSED);
    expect(asked).toHaveLength(1); // the private key: once per batch (checked before a cached epoch key is used)
    await writer.sealAll([sealed(signedIn('t1', 'd')), sealed(signedIn('t1', 'e'), other)], REFUSED);
    expect(asked).toHaveLength(2);
    expect((writer as unknown as { transport: TransportOpener }).transport.cachedEpochs).toBe(2);
    const opener = new TransportOpener({ privateKey: async () => pair.privateKey });
    await opener.openAll([{ index: 0, event: sealed(signedIn('t1', 'f')) }]);
    expect(opener.cachedEpochs).toBe(1);
    expect(JSON.stringify({ opener })).toBe('{"opener":"[TransportOpener]"}');
  });

  it('refuses a member moved to another event, sealed for another subject, altered, of an unknown or destroyed key; the rest of the batch is chained', async () => {
    const { writer, sealed } = await setUp();
    const good = sealed(signedIn('t1', 'alice'));
    const moved = { ...signedIn('t1', 'alice'), personal: good.personal };
    const relabelled = { ...signedIn('t1', 'bob'), personal: { ...(good.personal as TransportSealedPersonal), subjectId: 'bob' } };
    const toAlter = sealed(signedIn('t1', 'alice'));
    const ct = Buffer.from((toAlter.personal as TransportSealedPersonal).ct, 'base64url');
    ct[0] ^= 0xff;
    const altered = { ...toAlter, personal: { ...(toAlter.personal as TransportSealedPersonal), ct: ct.toString('base64url') } };
    const unknownPair = await generateTransportKeyPair();
    const unknownKid = sealed(signedIn('t1', 'alice'), await TransportSealingEpoch.start(transportKeyId(unknownPair.publicKey), unknownPair.publicKey, Date.now()));
    const plaintext = signedIn('t1', 'carol');

    const chained = await writer.sealAll([moved, good, relabelled, plaintext, altered, unknownKid], REFUSED);

    expect((await writer.openAll([chained[1], chained[3]])).map((o) => o?.subjectId)).toEqual(['alice', 'carol']);
    const refusals = [chained[0], chained[2], chained[4], chained[5]] as unknown as Array<{ refusedIndex: number; problems: string[] }>;
    expect(refusals.map((r) => r.refusedIndex)).toEqual([0, 2, 4, 5]);
    expect(refusals[0].problems[0]).toMatch(/does not open under its audit transport key for this event/);
    expect(refusals[1].problems[0]).toMatch(/does not open/);
    expect(refusals[2].problems[0]).toMatch(/does not open/);
    expect(refusals[3].problems[0]).toMatch(/no such audit transport key/);
    expect(JSON.stringify(refusals)).not.toMatch(/alice|bob|192\.0\.2/);

    // destroyed after its grace period: a member still sealed to it is refused (after the private key cache of the keys, here none)
    const fresh = await setUp();
    const late = fresh.sealed(signedIn('t1', 'alice'));
    fresh.privateKeys.delete(fresh.kid);
    expect(await fresh.writer.sealAll([late], REFUSED)).toEqual([{ refusedIndex: 0, problems: [expect.stringMatching(/no such audit transport key/)] }]);
  });

  it('refuses transport-sealed members when it has no transport keys', async () => {
    const { sealed, keys, kek, tx } = await setUp();
    const without = new PersonalData(keys as unknown as SubjectKeysRepository, kek, tx);
    expect(await without.sealAll([sealed(signedIn('t1', 'alice'))], REFUSED)).toEqual([{ refusedIndex: 0, problems: [expect.stringMatching(/transport-sealed/)] }]);
  });
});
