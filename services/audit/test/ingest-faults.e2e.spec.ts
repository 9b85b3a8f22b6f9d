import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { eventually } from '@palisade/testing';
import { AuditUnderTest, callAsOperator, sameIds } from './harness';

// The audit service built and started as processes (port offset 4000), fed through
// the real PALISADE_EVENTS stream, writing a throw-away audit topic on the shared
// Kafka. Faults: a writer killed with -9 beside a standby, Kafka stopped for 30 s, the
// project's NATS server restarted. After each fault: the set of event ids in the topic equals the set
// published (nothing lost, nothing twice) and every chain and checkpoint verifies.
jest.setTimeout(150_000);

describe('audit ingest under faults', () => {
  const audit = new AuditUnderTest('e2etest');

  beforeAll(() => audit.setUp());
  afterAll(() => audit.tearDown());

  it('two instances at once, the writer killed with -9 mid-load: the standby takes over, every event once, chains verify', async () => {
    const a = audit.start();
    await audit.ready(a);
    const b = audit.start();
    await audit.ready(b);
    // a took the lease first; b stands by (and serves reads).
    const loading = audit.publish(3000, { perBatch: 50, pauseMs: 15 });
    await eventually(async () => (await audit.verify(await audit.jwks(a.port))).ids.length > 300, 30_000, 200);
    await a.stop('SIGKILL');
    await loading;
    const { result, ids, records } = await audit.settleAndVerify(b.port);
    expect(result.failure).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(sameIds(audit.published, ids).found).toEqual(sameIds(audit.published, ids).published);
    expect(new Set(ids).size).toBe(ids.length);
    // One chain per partition; a tenant's records all in one partition, in publish order.
    for (const tenant of audit.tenants) {
      const mine = records.filter((r) => r.event.tenantId === tenant);
      expect(new Set(mine.map((r) => r.partition)).size).toBe(1);
    }
    // Within 10 s every partition with records is sealed by a signed checkpoint at its head.
    const partitions = Object.keys(result.partitions).length;
    const sealed = await eventually(async () => {
      const v = await audit.verify(await audit.jwks(b.port));
      return v.result.ok && v.result.checkpoints >= partitions ? v.result : undefined;
    }, 30_000, 1000);
    // Other events (the shared stream, the service's own) may have arrived meanwhile: at least as many.
    expect(sealed.records).toBeGreaterThanOrEqual(result.records);
    const ready = JSON.parse((await callAsOperator(b.port, '/health/ready')).body);
    expect(ready.checks.writer).toEqual({ ok: true });
  });

  it('Kafka stopped for 30 s and restarted: events wait in JetStream, readiness says why, then every event once', async () => {
    const writer = audit.instances.find((i) => i.child.exitCode === null && i.child.signalCode === null)!;
    await audit.publish(200, { perBatch: 50 });
    const before = audit.published.length;
    await eventually(async () => (await audit.verify(await audit.jwks(writer.port))).ids.length >= before, 30_000, 500);
    const jwks = await audit.jwks(writer.port);
    const kafkaDown = Date.now();
    try {
      await sh('bash deploy/local/kafka.sh down');
      const publishing = audit.publish(600, { perBatch: 50, pauseMs: 500 });
      const notReady = await eventually(async () => {
        const reply = await callAsOperator(writer.port, '/health/ready');
        return reply.status === 503 ? JSON.parse(reply.body) : undefined;
      }, 20_000, 500);
      expect(notReady.checks.kafka.ok).toBe(false);
      expect(notReady.checks.kafka.reason).toMatch(/Kafka unreachable.*events wait in JetStream/);
      await publishing;
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - kafkaDown))));
    } finally {
      await sh('bash deploy/local/kafka.sh up');
    }
    await audit.ready(writer, 60_000);
    const { result, ids } = await eventually(async () => {
      const v = await audit.verify(jwks);
      return v.ids.length >= audit.published.length ? v : undefined;
    }, 60_000, 1000);
    expect(result.failure).toBeUndefined();
    expect(sameIds(audit.published, ids).found).toEqual(sameIds(audit.published, ids).published);
  });

  it('NATS restarted mid-load: deliveries in flight and acknowledgements lost in the restart end up once in the topic, chains verify', async () => {
    let writer = audit.instances.find((i) => i.child.exitCode === null && i.child.signalCode === null);
    if (!writer) await audit.ready((writer = audit.start()));
    const jwks = await audit.jwks(writer.port);
    const before = (await audit.verify(jwks)).ids.length;
    // A backlog the writer is still draining when the server goes away.
    await audit.publish(3000, { perBatch: 100 });
    await eventually(async () => (await audit.verify(jwks)).ids.length > before + 100, 30_000, 100);
    try {
      await sh('bash deploy/local/nats.sh down');
      await new Promise((r) => setTimeout(r, 3000));
    } finally {
      await sh('bash deploy/local/nats.sh up');
    }
    // The clients reconnect by themselves; then more events flow through the same durable.
    await audit.publish(300, { perBatch: 100 });
    const { result, ids } = await audit.settleAndVerify(writer.port, 90_000);
    expect(result.failure).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(sameIds(audit.published, ids).found).toEqual(sameIds(audit.published, ids).published);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

function sh(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd: join(__dirname, '..', '..', '..'), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${err}`))));
  });
}
