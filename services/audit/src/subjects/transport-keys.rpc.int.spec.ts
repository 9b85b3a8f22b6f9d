import { randomBytes } from 'node:crypto';
import { buildEvent, isSubjectSealedPersonal, isTransportSealedPersonal, PalisadeError, systemEventContext, type EventEnvelope, type PersonalSealer, type TransportSealedPersonal } from '@palisade/contracts';
import type { RecordedEvent } from '@palisade/audit-log';
import { connectNats, NatsPersonalSealer, serveRpc, TransportPersonalSealer, type NatsConnection, type RpcServer } from '@palisade/nats';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { ServiceIdentity } from '@palisade/pki';
import { createTestSchema, infra, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { ingestMigration } from '../ingest/ingest.migration';
import { KeyEncryptionKey } from '../keys/kek';
import { TransportKeys } from '../keys/transport-keys';
import { transportKeysMigration } from '../keys/transport-keys.migration';
import { TransportKeysRepository } from '../keys/transport-keys.repository';
import { PersonalData } from './personal-data';
import { sealPersonalHandlers } from './seal-personal.rpc';
import { SubjectKeysRepository } from './subject-keys.repository';
import { transportKeysHandlers } from './transport-keys.rpc';
import { TransportOpener } from './transport-opener';

// A producer (llm-router's certificate) sealing personal data locally to the audit
// transport key it got over the shared TLS NATS of deploy/local/nats.sh, from audit's
// handlers (audit's certificate) over keys in a throw-away schema; then audit's ingest
// opening and chaining it. Requests travel in a namespace of this run (PALISADE_RPC_NAMESPACE,
// test permissions) so that no running audit service answers.
const REFUSED = (i: number, problems: string[]) => ({ refusedIndex: i, problems }) as unknown as RecordedEvent;
const modelCall = (prompt: string): EventEnvelope =>
  buildEvent(systemEventContext('llm-router'), { type: 'llm-router.model-call.recorded', tenantId: 'acme', actor: { type: 'agent', id: 'a-1' }, data: { requestId: 'r-1' }, personal: { subjectId: 'u-alice', data: { prompt } } });

describe('transport sealing through the real NATS reply', () => {
  let db: TestSchema;
  let server: RpcServer;
  let keys: TransportKeys;
  let writer: PersonalData;
  const namespaceBefore = process.env.PALISADE_RPC_NAMESPACE;
  const identities: ServiceIdentity[] = [];
  const as = {} as Record<'audit' | 'llm-router' | 'billing', NatsConnection>;
  const fallbackOf = (nc: NatsConnection) => new NatsPersonalSealer({ nats: () => nc, timeoutMs: 3000 });

  beforeAll(async () => {
    process.env.PALISADE_RPC_NAMESPACE = `tkint${randomBytes(4).toString('hex')}`;
    db = await createTestSchema('audittkrpc');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE), transportKeysMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
    const transactions = new PgEventStore(db.dataSource, db.schema);
    keys = new TransportKeys(new TransportKeysRepository(db.schema), kek, transactions, { rotationMs: 7 * 86_400_000, graceMs: 30 * 86_400_000 });
    await keys.maintain();
    const subjectKeys = new SubjectKeysRepository(`${db.schema}.audit_subject_keys`);
    writer = new PersonalData(subjectKeys, kek, transactions, undefined, new TransportOpener(keys));
    for (const name of ['audit', 'llm-router', 'billing'] as const) {
      const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name });
      identities.push(identity);
      as[name] = await connectNats({ servers: infra('NATS_URL'), identity, name: `int-${name}-transport-keys` });
    }
    server = serveRpc(as.audit, { service: 'audit', handlers: { ...sealPersonalHandlers(new PersonalData(subjectKeys, kek, transactions)), ...transportKeysHandlers(keys) } });
    await as.audit.flush();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await Promise.all(Object.values(as).map((c) => c.close()));
    identities.forEach((i) => i.stop());
    await db?.drop();
    if (namespaceBefore === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
    else process.env.PALISADE_RPC_NAMESPACE = namespaceBefore;
  }, 60_000);

  it('llm-router seals locally to the key audit serves; audit opens the members at ingest and chains them under the subject key', async () => {
    let asked = 0;
    const fallback: PersonalSealer = { seal: (events) => (asked++, fallbackOf(as['llm-router']).seal(events)) };
    const sealer = new TransportPersonalSealer({ nats: () => as['llm-router'], timeoutMs: 3000, fallback });
    const events = [modelCall('marker-7f3a first'), modelCall('marker-7f3a second')];
    const stored = await sealer.seal(events);
    expect(asked).toBe(0);
    expect(stored.every((e) => isTransportSealedPersonal(e.personal))).toBe(true);
    expect((stored[0].personal as TransportSealedPersonal).kid).toBe((await keys.publicKeys()).keys[0].kid);
    expect(JSON.stringify(stored)).not.toContain('marker-7f3a');

    const chained = await writer.sealAll(stored, REFUSED);
    expect(chained.every((e) => isSubjectSealedPersonal(e.personal as never))).toBe(true);
    expect(JSON.stringify(chained)).not.toContain('marker-7f3a');
    expect(await writer.openAll(chained)).toEqual([
      { subjectId: 'u-alice', data: { prompt: 'marker-7f3a first' } },
      { subjectId: 'u-alice', data: { prompt: 'marker-7f3a second' } },
    ]);
    // moved to another event on the way: refused
    const moved = { ...modelCall('x'), personal: stored[0].personal };
    expect(await writer.sealAll([moved], REFUSED)).toEqual([{ refusedIndex: 0, problems: [expect.stringMatching(/does not open/)] }]);
  });

  it('a service NATS does not let ask for the keys falls back to its RPC, which fails closed too', async () => {
    const sealer = new TransportPersonalSealer({ nats: () => as.billing, timeoutMs: 2000, fallback: fallbackOf(as.billing) });
    const event = buildEvent(systemEventContext('billing'), { type: 'billing.account.created', tenantId: 'acme', actor: { type: 'service', id: 'billing' }, data: {}, personal: { subjectId: 'u-1', data: { name: 'x' } } });
    await expect(sealer.seal([event])).rejects.toMatchObject(new PalisadeError('unavailable', 'personal data cannot be sealed: the audit service is unavailable'));
  });

  it('with no transport key served, the producer has audit seal over the RPC; with audit away altogether, it fails closed', async () => {
    const before = process.env.PALISADE_RPC_NAMESPACE;
    process.env.PALISADE_RPC_NAMESPACE = `rpconly${randomBytes(3).toString('hex')}`;
    const rpcOnly = serveRpc(as.audit, { service: 'audit', handlers: sealPersonalHandlers(writer) });
    try {
      await as.audit.flush();
      const sealer = new TransportPersonalSealer({ nats: () => as['llm-router'], timeoutMs: 2000, fallback: fallbackOf(as['llm-router']) });
      const [sealed] = await sealer.seal([modelCall('marker')]);
      expect(isSubjectSealedPersonal(sealed.personal)).toBe(true);
      expect(await writer.openAll([sealed as RecordedEvent])).toEqual([{ subjectId: 'u-alice', data: { prompt: 'marker' } }]);
      await rpcOnly.stop();
      process.env.PALISADE_RPC_NAMESPACE = `nobody${randomBytes(3).toString('hex')}`;
      const alone = new TransportPersonalSealer({ nats: () => as['llm-router'], timeoutMs: 2000, fallback: fallbackOf(as['llm-router']) });
      await expect(alone.seal([modelCall('marker')])).rejects.toMatchObject({ code: 'unavailable' });
    } finally {
      await rpcOnly.stop();
      process.env.PALISADE_RPC_NAMESPACE = before;
    }
  });
});
