import { buildEvent, systemEventContext } from '@palisade/contracts';
import { connectNats, JetStreamEventPublisher, type NatsConnection } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, infra } from '@palisade/testing';
import { AuditUnderTest } from './harness';

// Issue 10, finding 2: llm-router published auth's history on its own subject and the
// audit service chained it. The audit service built and started as a process, fed
// through the real PALISADE_EVENTS stream: the forged event never enters the chain, the
// report of it does (audit.security.event-forgery-detected, tenant system), and the
// chains still verify.
jest.setTimeout(120_000);

describe('audit ingest refuses forged history', () => {
  const audit = new AuditUnderTest('e2eforgery');
  let identity: ServiceIdentity;
  let llmRouter: NatsConnection;

  beforeAll(async () => {
    await audit.setUp();
    identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'llm-router' });
    llmRouter = await connectNats({ servers: infra('NATS_URL'), identity, name: 'audit-e2e-llm-router' });
  });
  afterAll(async () => {
    await llmRouter?.close();
    identity?.stop();
    await audit.tearDown();
  });

  it('chains the report of an event llm-router forged as auth, never the forged event', async () => {
    const instance = audit.start();
    await audit.ready(instance);
    const tenant = audit.tenants[0];
    const forged = buildEvent(systemEventContext('auth'), { type: 'auth.user.signed-in', tenantId: tenant, actor: { type: 'user', id: 'forged-ceo' }, data: {} });
    await llmRouter.jetstream().publish(`palisade.events.llm-router.completion.${audit.suffix}`, JSON.stringify(forged));
    const own = buildEvent(systemEventContext('llm-router'), { type: 'llm-router.completion.finished', tenantId: tenant, actor: { type: 'service', id: 'llm-router' }, data: {} });
    await new JetStreamEventPublisher(llmRouter).publish([own]);

    const jwks = await audit.jwks(instance.port);
    const seen = (r: { event: { id: string; tenantId: string; data: Record<string, unknown> } }) => r.event.tenantId === tenant || r.event.data.eventId === forged.id;
    const { result, records } = await eventually(async () => {
      const v = await audit.verify(jwks, seen);
      return v.records.some((r) => r.event.id === own.id) && v.records.some((r) => r.event.data.eventId === forged.id) ? v : undefined;
    }, 60_000, 500);
    expect(result.ok).toBe(true);
    expect(records.map((r) => r.event.id)).not.toContain(forged.id);
    const report = records.find((r) => r.event.data.eventId === forged.id)!;
    expect(report.event).toMatchObject({
      type: 'audit.security.event-forgery-detected',
      source: 'audit',
      tenantId: 'system',
      data: { publisher: 'llm-router', claimedSource: 'auth', claimedType: 'auth.user.signed-in', tenantId: tenant, consumer: 'audit-e2eforgery' },
    });
    expect(JSON.stringify(report)).not.toContain('forged-ceo');
  });
});
