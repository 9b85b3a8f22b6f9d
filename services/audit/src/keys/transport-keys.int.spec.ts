import { randomBytes } from 'node:crypto';
import { buildEvent, systemEventContext, type EventEnvelope, type Personal, type TransportSealedPersonal } from '@palisade/contracts';
import { TransportSealingEpoch } from '@palisade/nats';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { ingestMigration } from '../ingest/ingest.migration';
import { TransportOpener } from '../subjects/transport-opener';
import { KeyEncryptionKey } from './kek';
import { TransportKeys } from './transport-keys';
import { transportKeysMigration } from './transport-keys.migration';
import { TransportKeysRepository } from './transport-keys.repository';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// The audit transport keys in PostgreSQL (as the application role): created once, rotated
// on the period, the retired key still opening what producers sealed to it until its grace
// period has passed, then destroyed; the public key served, the private one only wrapped.
describe('audit transport keys: persistence and rotation', () => {
  let db: TestSchema;
  let store: PgEventStore;
  const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
  let now = new Date('2026-12-01T00:00:00.000Z');
  const policy = { rotationMs: 7 * DAY, graceMs: 30 * DAY };
  const instance = (k = kek) => new TransportKeys(new TransportKeysRepository(db.schema), k, store, policy, () => now);

  beforeAll(async () => {
    db = await createTestSchema('audittk');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), transportKeysMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    store = new PgEventStore(db.dataSource, db.schema);
  }, 60_000);
  afterAll(() => db?.drop());

  const rows = async () =>
    (await db.dataSource.query(`SELECT kid, wrapped_private IS NOT NULL AS live, retired_at IS NOT NULL AS retired, octet_length(wrapped_private) AS wrapped_bytes FROM ${db.schema}.audit_transport_keys ORDER BY created_at`)) as Array<{
      kid: string;
      live: boolean;
      retired: boolean;
      wrapped_bytes: number | null;
    }>;
  const sealTo = async (keys: TransportKeys) => {
    const [served] = (await keys.publicKeys()).keys;
    const epoch = await TransportSealingEpoch.start(served.kid, Buffer.from(served.x, 'base64url'), now.getTime());
    const event: EventEnvelope = buildEvent(systemEventContext('llm-router'), { type: 'llm-router.model-call.recorded', tenantId: 'acme', actor: { type: 'agent', id: 'a-1' }, data: {}, personal: { subjectId: 'u-1', data: { prompt: 'marker' } } });
    return { event, member: epoch.seal(event, event.personal as Personal) };
  };
  const opens = async (keys: TransportKeys, sealed: { event: EventEnvelope; member: TransportSealedPersonal }) => {
    const { opened, problems } = await new TransportOpener(keys).openAll([{ index: 0, event: { ...sealed.event, personal: sealed.member } }]);
    return opened.get(0)?.data ?? problems.get(0);
  };

  it('creates one key at the first start (two instances starting together make one), served with its notAfter; the private key stored only wrapped', async () => {
    const [a, b] = await Promise.all([instance().maintain(), instance().maintain()]);
    expect(a.current).toBe(b.current);
    expect([a.rotated, b.rotated]).toEqual([null, null]);
    const stored = await rows();
    expect(stored).toEqual([{ kid: a.current, live: true, retired: false, wrapped_bytes: 12 + 32 + 16 }]);
    const reply = await instance().publicKeys();
    expect(reply).toEqual({
      keys: [{ kid: a.current, kty: 'OKP', crv: 'X25519', x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), alg: 'HPKE-X25519-SHA256-EXPORT-A256GCM', createdAt: now.toISOString(), notAfter: new Date(now.getTime() + 14 * DAY).toISOString() }],
    });
    // not due: a restart keeps it
    now = new Date(now.getTime() + 6 * DAY);
    expect(await instance().maintain()).toEqual({ current: a.current, rotated: null, destroyed: [] });
  });

  it('rotates after the period; the retired key opens what was sealed to it until its grace has passed, then is destroyed and refused', async () => {
    const keys = instance();
    const before = await sealTo(keys);
    const first = (await rows())[0].kid;
    now = new Date(now.getTime() + 1 * DAY + 1); // 7 days after creation
    const rotated = await instance().maintain();
    expect(rotated.rotated).toBe(first);
    expect(rotated.current).not.toBe(first);
    expect((await rows()).map((r) => [r.live, r.retired])).toEqual([[true, true], [true, false]]);
    expect((await instance().publicKeys()).keys.map((k) => k.kid)).toEqual([rotated.current]);
    expect(await opens(instance(), before)).toEqual({ prompt: 'marker' });

    // the first key's notAfter (14 days after it was made) plus 30 days of grace: not yet ...
    now = new Date(Date.parse('2026-12-01T00:00:00.000Z') + 44 * DAY - 1);
    expect((await instance().maintain()).destroyed).toEqual([]);
    expect(await opens(instance(), before)).toEqual({ prompt: 'marker' });
    // ... then destroyed: the row stays (its kid known), the private key is gone
    now = new Date(now.getTime() + 2);
    const done = await instance().maintain();
    expect(done.destroyed).toEqual([first]);
    expect((await rows()).find((r) => r.kid === first)).toEqual({ kid: first, live: false, retired: true, wrapped_bytes: null });
    expect(await opens(instance(), before)).toEqual([expect.stringMatching(/no such audit transport key/)]);
    // the second key was due too (made on day 7): retired now, its grace runs from its notAfter (day 21); a third is current
    expect((await rows()).map((r) => [r.live, r.retired])).toEqual([[false, true], [true, true], [true, false]]);
  });

  it('never gives a private key unwrapped by another KEK, nor one that does not exist', async () => {
    const current = (await rows()).find((r) => r.live)!.kid;
    await expect(instance(KeyEncryptionKey.fromBytes(randomBytes(32))).privateKey(current)).rejects.toThrow();
    expect(await instance().privateKey('A'.repeat(43))).toBeUndefined();
    expect(JSON.stringify(instance())).toBe('"[TransportKeys]"');
  });
});
