import { eventually, infra } from '@palisade/testing';
import { partitionOf } from '../src/ingest/audit-topic';
import { auditConfigShape } from '../src/audit.config';
import { AuditUnderTest, call, palisadeCli as cli, type Instance } from './harness';

// Issue 18: a deployment with AUDIT_CHECKPOINT_ALGORITHM=sm2 (port offset 4850, audit on
// 11955, durable audit-e2esm2, its own schema and topics). Its checkpoints are signed with
// SM2 under an `sm2:` kid; the JWKS publishes {"kty":"EC","crv":"SM2"}; the verification
// endpoint and `palisade audit verify` on the live topic accept them.
jest.setTimeout(180_000);

const PLATFORM = ['audit:read:all', 'audit:erase', 'audit:admin'];

describe('audit with SM2 checkpoints', () => {
  const audit = new AuditUnderTest('e2esm2', { AUDIT_CHECKPOINT_ALGORITHM: 'sm2' }, 4850);
  let svc: Instance;

  beforeAll(async () => {
    await audit.setUp();
    svc = audit.start();
    await audit.ready(svc);
    await audit.publish(12);
  });
  afterAll(() => audit.tearDown());

  it('publishes an SM2 key, seals every partition with SM2 checkpoints that verify, through the endpoint and the CLI', async () => {
    const jwks = await audit.jwks(svc.port);
    expect(jwks.keys).toEqual([{ kty: 'EC', crv: 'SM2', x: expect.any(String), y: expect.any(String), kid: expect.stringMatching(/^sm2:[A-Za-z0-9_-]{22}$/), use: 'sig' }]);
    const { result, ids } = await audit.settleAndVerify(svc.port);
    expect(result.ok).toBe(true);
    expect(ids.length).toBeGreaterThanOrEqual(12);

    const token = await audit.token(PLATFORM, 'system');
    // The partition of the first tenant's chain, which surely holds records: partition 0 held
    // none when no tenant of this run hashed there ((2/3)^8 ≈ 4 % of runs with 3 partitions;
    // it failed CI twice). A checkpoint is written every 10 s; a miss names the last answer.
    const partition = partitionOf(audit.topic, audit.tenants[0], auditConfigShape.AUDIT_PARTITIONS.parse(undefined));
    const verified = await eventually(async () => {
      const reply = await call(svc.port, `/v1/audit/verify?partition=${partition}`, { token });
      const body = reply.status === 200 ? JSON.parse(reply.body) : undefined;
      if (body?.status === 'ok' && body.checkpointsVerified >= 1) return body;
      throw new Error(`partition ${partition} answered ${reply.status} ${JSON.stringify(body ? { status: body.status, checkpointsVerified: body.checkpointsVerified, records: body.records } : reply.body.slice(0, 200))}`);
    }, 90_000, 1000);
    expect(verified).toMatchObject({ ok: true, status: 'ok' });

    const run = await cli(['audit', 'verify', '--brokers', infra('KAFKA_BROKERS'), '--topic', audit.topic, '--checkpoint-topic', audit.checkpointTopic, '--keys-url', `https://127.0.0.1:${svc.port}/v1/audit/keys`]);
    expect(run.stderr).not.toMatch(/FAILED|error/i);
    expect(run.code).toBe(0);
    const m = /^OK: verified (\d+) record\(s\) in \d+ partition\(s\) and (\d+) checkpoint\(s\)/.exec(run.stdout);
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(12);
    expect(Number(m?.[2])).toBeGreaterThanOrEqual(1);
  });
});
