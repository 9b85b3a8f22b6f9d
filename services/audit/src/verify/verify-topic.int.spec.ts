import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { appendToChain, emptyHead, keysOf, publicJwk, sealRecord, signCheckpoint, type AuditRecord, type Jwks } from '@palisade/audit-log';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import { ServiceIdentity } from '@palisade/pki';
import { infra } from '@palisade/testing';
import { verifyTopic, verifyTopicInParallel } from './verify-topic';

const RECORDS = 400;

/**
 * The live topic verified on worker threads (verifyTopicInParallel) gives the verdicts of
 * the single-threaded verifyTopic: a topic whose partition 0 is intact and whose other
 * partitions each hold one fault, written with a plain producer (the audit writer never
 * would), checked two partitions at a time (one per worker).
 */
describe('verifyTopicInParallel (Kafka)', () => {
  let identity: ServiceIdentity;
  let kafka: Kafka;
  let admin: Admin;
  const topic = `palisade.audit.vptest-${randomBytes(4).toString('hex')}`;
  const checkpointTopic = `${topic}-checkpoints`;
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwks: Jwks = { keys: [publicJwk(publicKey, 'k1')] };

  /** A chain of RECORDS records on `partition`, checkpoints every 50, then `fault` applied to the values. */
  function chain(partition: number, fault: (values: string[]) => string[]): { values: string[]; checkpoints: string[] } {
    let head = emptyHead(partition);
    const values: string[] = [];
    const checkpoints: string[] = [];
    for (let i = 0; i < RECORDS; i++) {
      const next = appendToChain(
        head,
        { id: randomUUID(), type: 'billing.usage.recorded', source: 'billing', tenantId: `vp-${partition}`, actor: { type: 'agent', id: 'a' }, occurredAt: '2026-12-03T10:00:00.000Z', data: { i, note: 'é' } },
        '2026-12-03T10:00:01.000Z',
      );
      head = next.head;
      values.push(next.value);
      if (head.seq % 50 === 0) checkpoints.push(JSON.stringify(signCheckpoint({ v: 1, partition, seq: head.seq, hash: head.hash, at: '2026-12-03T10:00:02.000Z', keyId: 'k1' }, privateKey)));
    }
    return { values: fault(values), checkpoints };
  }
  const tamper = (i: number) => (values: string[]) => values.map((v, n) => (n === i ? v.replace('"note":"é"', '"note":"e"') : v));
  const faults: Array<{ partition: number; name: string; fault: (values: string[]) => string[]; reason?: string; seq?: number }> = [
    { partition: 0, name: 'intact', fault: (v) => v },
    { partition: 1, name: 'tampered record', fault: tamper(120), reason: 'content_changed', seq: 121 },
    { partition: 2, name: 'gap', fault: (v) => v.filter((_, n) => n !== 200), reason: 'gap', seq: 202 },
    { partition: 3, name: 'reordered', fault: (v) => [...v.slice(0, 30), v[31], v[30], ...v.slice(32)], reason: 'gap', seq: 32 },
    { partition: 4, name: 'replayed', fault: (v) => [...v.slice(0, 300), v[299], ...v.slice(300)], reason: 'out_of_order', seq: 300 },
    {
      partition: 5,
      name: 'id repeated from partition 0',
      // Partition 0's first event id put into the last record, re-sealed: hash and links hold.
      fault: (v) => v,
      reason: 'duplicate_event',
      seq: RECORDS,
    },
  ];

  beforeAll(async () => {
    identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity, clientId: 'audit-verify-parallel-int', logLevel: 'error' });
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: faults.length, replicationFactor: 1 }, { topic: checkpointTopic, numPartitions: 1, replicationFactor: 1 }] });
    const chains = faults.map((f) => chain(f.partition, f.fault));
    // Partition 5's last record repeats partition 0's first event id (its checkpoint dropped).
    const firstId = (JSON.parse(chains[0].values[0]) as AuditRecord).event.id;
    const last = JSON.parse(chains[5].values[RECORDS - 1]) as AuditRecord;
    chains[5].values[RECORDS - 1] = JSON.stringify(sealRecord({ v: last.v, partition: last.partition, seq: last.seq, prev: last.prev, recordedAt: last.recordedAt, event: { ...last.event, id: firstId } }));
    chains[5].checkpoints.pop();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let i = 0; i < RECORDS + 1; i += 100) {
      await producer.send({ topic, acks: -1, messages: chains.flatMap((c, p) => c.values.slice(i, i + 100).map((value) => ({ partition: p, value }))) });
    }
    await producer.send({ topic: checkpointTopic, acks: -1, messages: chains.flatMap((c) => c.checkpoints.map((value) => ({ partition: 0, value }))) });
    await producer.disconnect();
  }, 60_000);

  afterAll(async () => {
    await admin?.deleteTopics({ topics: [topic, checkpointTopic] }).catch(() => undefined);
    await admin?.disconnect();
    identity?.stop();
  }, 30_000);

  const both = async (partitions: number[]) => {
    const common = { kafka, admin, topic, checkpointTopic, partitions, groupPrefix: 'audit-vp-int', allowLaterStart: false };
    return { single: await verifyTopic({ ...common, keys: keysOf(jwks) }), parallel: await verifyTopicInParallel({ ...common, jwks, threads: 2 }) };
  };

  it('intact partitions: the same result as the single-threaded verifier', async () => {
    const { single, parallel } = await both([0]);
    expect(single.ok).toBe(true);
    expect(parallel).toEqual(single);
    expect(parallel.records).toBe(RECORDS);
    expect(parallel.checkpoints).toBe(RECORDS / 50);
  }, 60_000);

  it.each(faults.slice(1).map((f) => [f.name, f] as const))('%s: the same fault as the single-threaded verifier', async (_name, f) => {
    const { single, parallel } = await both([0, f.partition]);
    expect(parallel.ok).toBe(false);
    if (f.reason === 'duplicate_event') {
      // Which copy either verifier meets second depends on the order Kafka hands the partitions over:
      // partition 0's first record or the repeat at the end of f's partition.
      const copies = [{ reason: 'duplicate_event', partition: 0, seq: 1 }, { reason: f.reason, partition: f.partition, seq: f.seq }];
      for (const failure of [single.failure, parallel.failure]) expect(copies).toContainEqual({ reason: failure?.reason, partition: failure?.partition, seq: failure?.seq });
    } else {
      expect(parallel.failure).toMatchObject({ reason: f.reason, partition: f.partition, seq: f.seq });
      expect(parallel.failure).toEqual(single.failure);
    }
  }, 60_000);
});
