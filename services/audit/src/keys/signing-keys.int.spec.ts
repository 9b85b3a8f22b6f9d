import { randomBytes } from 'node:crypto';
import { ChainVerifier, appendToChain, emptyHead, keysOf, signCheckpoint, type AuditRecord, type Checkpoint } from '@palisade/audit-log';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { ingestMigration } from '../ingest/ingest.migration';
import { KeyEncryptionKey } from './kek';
import { SigningKeys } from './signing-keys';
import { SigningKeysRepository } from './signing-keys.repository';

// AUDIT_CHECKPOINT_ALGORITHM per deployment: the signing key follows the configured algorithm
// at start, the other algorithm's keys stay published, checkpoints of both verify.
describe('checkpoint signing keys, Ed25519 or SM2 per deployment', () => {
  let db: TestSchema;
  let store: PgEventStore;
  const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
  beforeAll(async () => {
    db = await createTestSchema('auditsk');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    store = new PgEventStore(db.dataSource, db.schema);
  }, 60_000);
  afterAll(() => db?.drop());

  const keysFor = (algorithm: 'ed25519' | 'sm2') => new SigningKeys(new SigningKeysRepository(db.schema), kek, store, algorithm);

  it('starts with the configured algorithm, rotates when it changes, keeps every key published, verifies checkpoints of both', async () => {
    const ed = keysFor('ed25519');
    await ed.initialize();
    const first = await ed.current();
    expect(first.kid).toMatch(/^[A-Za-z0-9_-]{22}$/);

    const sm2 = keysFor('sm2');
    await sm2.initialize();
    const second = await sm2.current();
    expect(second.kid).toMatch(/^sm2:[A-Za-z0-9_-]{22}$/);
    await keysFor('sm2').initialize(); // a second instance of the same deployment: no new key
    expect((await sm2.current()).kid).toBe(second.kid);
    expect((await sm2.rotate()).kid).toMatch(/^sm2:/); // a rotation stays with the configured algorithm

    const jwks = await sm2.jwks();
    expect(jwks.keys).toHaveLength(3);
    expect(jwks.keys[0]).toEqual({ kty: 'OKP', crv: 'Ed25519', x: expect.any(String), kid: first.kid, use: 'sig' });
    expect(jwks.keys[1]).toEqual({ kty: 'EC', crv: 'SM2', x: expect.any(String), y: expect.any(String), kid: second.kid, use: 'sig' });

    const checkpoints: Checkpoint[] = [];
    let head = emptyHead(0);
    const records: AuditRecord[] = [];
    for (const signer of [first, second]) {
      const next = appendToChain(head, { id: `0193a000-0000-7000-8000-00000000000${records.length + 1}`, type: 'audit.signing_key.rotated', source: 'audit', tenantId: 'system', actor: { type: 'system', id: 'audit' }, occurredAt: '2026-11-22T10:00:00.000Z', data: {} }, '2026-11-22T10:00:01.000Z');
      records.push(next.record);
      head = next.head;
      checkpoints.push(signCheckpoint({ v: 1, partition: 0, seq: head.seq, hash: head.hash, at: '2026-11-22T10:00:02.000Z', keyId: signer.kid }, signer.privateKey));
    }
    const verifier = new ChainVerifier({ keys: keysOf(jwks) });
    for (const c of checkpoints) verifier.addCheckpoint(c);
    for (const r of records) verifier.addRecord(r);
    expect(verifier.finish()).toMatchObject({ ok: true, records: 2, checkpoints: 2 });
  });
});
