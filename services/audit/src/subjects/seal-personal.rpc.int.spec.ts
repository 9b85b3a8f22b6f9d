import { randomBytes } from 'node:crypto';
import { newEventId, SEAL_PERSONAL_SUBJECT, serviceOfEventType, type EventEnvelope, type PalisadeError, type SealedPersonal, type SealPersonalReply, type SealPersonalRequest } from '@palisade/contracts';
import { connectNats, rpcRequest, serveRpc, type NatsConnection, type RpcServer } from '@palisade/nats';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { ServiceIdentity } from '@palisade/pki';
import { createTestSchema, infra, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { ingestMigration } from '../ingest/ingest.migration';
import { KeyEncryptionKey } from '../keys/kek';
import { PersonalData } from './personal-data';
import { sealPersonalHandlers } from './seal-personal.rpc';
import { SubjectKeysRepository } from './subject-keys.repository';

// SEAL_PERSONAL_SUBJECT over the shared TLS NATS of deploy/local/nats.sh, answered by the
// audit service's handlers (as in the service) over subject keys in a throw-away schema,
// asked with each service's own certificate. The requests travel in a namespace of this
// run (PALISADE_RPC_NAMESPACE, test permissions) so that no running audit service answers.
const refusal = (p: Promise<unknown>) => p.then(() => 'answered', (e: PalisadeError) => ({ code: e.code, message: e.message }));
const toSeal = (type: string, subjectId: string, data: Record<string, unknown> = {}): SealPersonalRequest['events'][number] => ({
  id: newEventId(),
  type,
  tenantId: 'acme',
  data,
  personal: { subjectId, data: { username: `name-of-${subjectId}`, sourceAddress: '192.0.2.7' } },
});
/** The event as the producer stores and publishes it, with audit's sealed member. */
const stored = (e: SealPersonalRequest['events'][number], sealed: SealedPersonal): EventEnvelope => ({
  id: e.id,
  type: e.type,
  source: serviceOfEventType(e.type)!,
  tenantId: e.tenantId,
  actor: { type: 'user', id: e.personal.subjectId },
  occurredAt: new Date().toISOString(),
  data: e.data,
  personal: sealed,
});

describe('sealing personal data for producers over NATS request-reply', () => {
  let db: TestSchema;
  let server: RpcServer;
  let answering: PersonalData;
  /** Another audit instance over the same keys: the chain writer. */
  let writer: PersonalData;
  const namespaceBefore = process.env.PALISADE_RPC_NAMESPACE;
  const identities: ServiceIdentity[] = [];
  const as = {} as Record<'audit' | 'auth' | 'llm-router' | 'billing', NatsConnection>;

  beforeAll(async () => {
    process.env.PALISADE_RPC_NAMESPACE = `sealint${randomBytes(4).toString('hex')}`;
    db = await createTestSchema('auditseal');
    const migrator = createDataSource(db.owner, [ingestMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    const kek = KeyEncryptionKey.fromBytes(randomBytes(32));
    const transactions = new PgEventStore(db.dataSource, db.schema);
    answering = new PersonalData(new SubjectKeysRepository(`${db.schema}.audit_subject_keys`), kek, transactions);
    writer = new PersonalData(new SubjectKeysRepository(`${db.schema}.audit_subject_keys`), kek, transactions);
    for (const name of ['audit', 'auth', 'llm-router', 'billing'] as const) {
      const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name });
      identities.push(identity);
      as[name] = await connectNats({ servers: infra('NATS_URL'), identity, name: `int-${name}-seal-personal` });
    }
    server = serveRpc(as.audit, { service: 'audit', handlers: sealPersonalHandlers(answering) });
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

  const seal = (nc: NatsConnection, events: SealPersonalRequest['events']) => rpcRequest<SealPersonalReply>(nc, SEAL_PERSONAL_SUBJECT, { events }, { timeoutMs: 5000 });

  it("seals auth's events in request order, in the topic format: the writer chains them as given and readers open them", async () => {
    const events = [toSeal('auth.user.signed-in', 'u-alice', { userId: 'u-alice' }), toSeal('auth.user.sign-in-failed', 'unknown-bob', { userId: null })];
    const { sealed } = await seal(as.auth, events);
    expect(sealed).toEqual([
      { subjectId: 'u-alice', keyId: expect.any(String), alg: 'A256GCM', sealed: expect.any(String) },
      { subjectId: 'unknown-bob', keyId: expect.any(String), alg: 'A256GCM', sealed: expect.any(String) },
    ]);
    expect(JSON.stringify(sealed)).not.toContain('192.0.2.7');
    const records = events.map((e, i) => stored(e, sealed[i]));
    const chained = await writer.sealAll(records, () => {
      throw new Error('refused a genuine sealed member');
    });
    expect(chained).toEqual(records);
    expect(await writer.openAll(chained)).toEqual([
      { subjectId: 'u-alice', data: { username: 'name-of-u-alice', sourceAddress: '192.0.2.7' } },
      { subjectId: 'unknown-bob', data: { username: 'name-of-unknown-bob', sourceAddress: '192.0.2.7' } },
    ]);
    // llm-router has its own events sealed too.
    expect((await seal(as['llm-router'], [toSeal('llm-router.model.called', 'u-alice')])).sealed).toHaveLength(1);
  });

  it("refuses an event of another service (forbidden, naming it), and a service NATS does not let ask", async () => {
    expect(await refusal(seal(as.auth, [toSeal('auth.user.signed-in', 'u-1'), toSeal('llm-router.model.called', 'u-1')]))).toEqual({
      code: 'forbidden',
      message: expect.stringContaining('events[1] (llm-router.model.called)'),
    });
    expect(await refusal(seal(as['llm-router'], [toSeal('auth.user.signed-in', 'u-1')]))).toMatchObject({ code: 'forbidden', message: expect.stringContaining('events[0] (auth.user.signed-in)') });
    expect(await refusal(seal(as.billing, [toSeal('billing.usage.recorded', 'u-1')]))).toMatchObject({ code: 'forbidden' });
    // Validation: the contract's schema (at most 500 events, a UUIDv7 id).
    expect(await refusal(seal(as.auth, [{ ...toSeal('auth.user.signed-in', 'u-1'), id: 'not-an-id' }]))).toMatchObject({ code: 'validation' });
  });

  it("an erased subject's producer-sealed data reads back as erased, chained before or after the erasure", async () => {
    const before = toSeal('auth.user.signed-in', 'u-erased', { userId: 'u-erased' });
    const after = toSeal('auth.user.signed-in', 'u-erased', { userId: 'u-erased' });
    const { sealed } = await seal(as.auth, [before, after]);
    const [chainedBefore] = await writer.sealAll([stored(before, sealed[0])], () => {
      throw new Error('refused');
    });
    expect(await answering.erase('u-erased')).toBe(1);
    const [chainedAfter] = await writer.sealAll([stored(after, sealed[1])], () => {
      throw new Error('refused');
    });
    expect(await writer.openAll([chainedBefore, chainedAfter])).toEqual([
      { subjectId: 'u-erased', erased: true },
      { subjectId: 'u-erased', erased: true },
    ]);
    // New data of the subject gets a new key.
    const { sealed: again } = await seal(as.auth, [toSeal('auth.user.signed-in', 'u-erased', { userId: 'u-erased' })]);
    expect(again[0].keyId).not.toBe(sealed[0].keyId);
  });
});
