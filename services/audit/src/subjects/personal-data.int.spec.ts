import { randomBytes } from 'node:crypto';
import type { RecordedEvent } from '@palisade/audit-log';
import { buildEvent, newEventId, type EventEnvelope, type Personal, type SealedPersonal } from '@palisade/contracts';
import { generateTransportKeyPair, transportKeyId, TransportSealingEpoch } from '@palisade/nats';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { ingestMigration } from '../ingest/ingest.migration';
import { KeyEncryptionKey } from '../keys/kek';
import { PersonalData } from './personal-data';
import { SubjectKeysRepository } from './subject-keys.repository';
import { subjectErasuresMigration } from './subject-erasures.migration';
import { TransportOpener } from './transport-opener';

// Erasure against the real key table: an event produced before its subject's erasure
// but ingested after (it waited in an outbox or JetStream) must not be sealed under the
// subject's new key.
describe('PersonalData at ingest after an erasure (PostgreSQL)', () => {
  let db: TestSchema;
  let writer: PersonalData;
  let other: PersonalData;
  let epoch: TransportSealingEpoch;
  const refuse = (): RecordedEvent => {
    throw new Error('refused');
  };
  const signedIn = (userId: string, occurredAt: Date): EventEnvelope =>
    buildEvent(
      { source: 'auth', now: () => occurredAt, newId: () => newEventId() },
      { type: 'auth.user.signed-in', tenantId: 't1', actor: { type: 'user', id: userId }, data: { userId }, personal: { subjectId: userId, data: { sourceAddress: '198.51.100.4' } } },
    );

  beforeAll(async () => {
    db = await createTestSchema('auditerase');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), subjectErasuresMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
    const transactions = new PgEventStore(db.dataSource, db.schema);
    const pair = await generateTransportKeyPair();
    const kid = transportKeyId(pair.publicKey);
    epoch = await TransportSealingEpoch.start(kid, pair.publicKey, Date.now());
    const opener = new TransportOpener({ privateKey: async (k) => (k === kid ? pair.privateKey : undefined) });
    writer = new PersonalData(new SubjectKeysRepository(`${db.schema}.audit_subject_keys`), kek, transactions, undefined, opener);
    other = new PersonalData(new SubjectKeysRepository(`${db.schema}.audit_subject_keys`), kek, transactions, undefined, opener);
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  }, 60_000);

  const transportSealed = (e: EventEnvelope): EventEnvelope => ({ ...e, personal: epoch.seal(e, e.personal as Personal) });

  it('a plaintext or transport-sealed member of an event older than the erasure reads back as erased; a newer event is readable', async () => {
    const [first] = await writer.sealAll([signedIn('u-gone', new Date())], refuse);
    const erasedKeyId = (first.personal as unknown as SealedPersonal).keyId;
    const waitedPlain = signedIn('u-gone', new Date(Date.now() - 60_000));
    const waitedTransport = transportSealed(signedIn('u-gone', new Date(Date.now() - 60_000)));
    expect(await writer.erase('u-gone')).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    const later = transportSealed(signedIn('u-gone', new Date()));
    // `other` has nothing cached: it reads the live key and the erasure from PostgreSQL
    for (const instance of [other, writer]) {
      const chained = await instance.sealAll([waitedPlain, waitedTransport, later], refuse);
      expect(chained.map((e) => (e.personal as unknown as SealedPersonal).keyId)).toEqual([erasedKeyId, erasedKeyId, expect.not.stringMatching(erasedKeyId)]);
      expect(JSON.stringify(chained.slice(0, 2))).not.toContain('198.51.100.4');
      expect(await instance.openAll(chained)).toEqual([
        { subjectId: 'u-gone', erased: true },
        { subjectId: 'u-gone', erased: true },
        { subjectId: 'u-gone', data: { sourceAddress: '198.51.100.4' } },
      ]);
    }
  });

  it('a subject never erased: older events are readable as before', async () => {
    const old = signedIn('u-kept', new Date(Date.now() - 3600_000));
    expect(await writer.openAll(await writer.sealAll([old], refuse))).toEqual([{ subjectId: 'u-kept', data: { sourceAddress: '198.51.100.4' } }]);
  });
});
