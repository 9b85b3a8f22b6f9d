import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import { ensureCa, issueCertificate, ServiceIdentity } from '@palisade/pki';
import { infra } from '@palisade/testing';
import { ConfigResourceTypes, kafkaClient, type KafkaIdentity } from './index';

// Against the broker of deploy/local/kafka.sh: TLS 1.3, client certificates required,
// StandardAuthorizer with the ACLs of deploy/local/kafka/acls.sh.
const brokers = () => infra('KAFKA_BROKERS');
const pkiDir = () => infra('PALISADE_PKI_DIR');
const suffix = randomBytes(4).toString('hex');
const topic = `palisade.audit.test-${suffix}`;

const identities: ServiceIdentity[] = [];
async function identity(kind: 'service' | 'admin', name: string): Promise<ServiceIdentity> {
  const id = await ServiceIdentity.fromDevCa({ caDir: pkiDir(), kind, name });
  identities.push(id);
  return id;
}

// Refusals are asserted quickly: no retries, short timeouts.
const fast = { retry: { retries: 0 }, connectionTimeoutMs: 3000, requestTimeoutMs: 5000, logLevel: 'error' as const };
const clients: { disconnect(): Promise<void> }[] = [];
function track<T extends { disconnect(): Promise<void> }>(client: T): T {
  clients.push(client);
  return client;
}

let audit: KafkaIdentity;
let platformAdmin: Admin;

beforeAll(async () => {
  audit = await identity('service', 'audit');
  const admin = kafkaClient({ brokers: brokers(), identity: await identity('admin', 'platform'), clientId: 'test-admin' });
  platformAdmin = track(admin.admin());
  await platformAdmin.connect();
});

afterAll(async () => {
  // Only the admin (a super user, above the deny ACLs) may remove an audit topic.
  await platformAdmin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
  identities.forEach((id) => id.stop());
});

/** Name, message and type of an error and of what it wraps (cause, per-partition errors). */
function describeError(error: unknown, depth = 0): string {
  if (!error || typeof error !== 'object' || depth > 3) return String(error ?? '');
  const e = error as { name?: string; message?: string; type?: string; cause?: unknown; partitions?: { error?: unknown }[] };
  return [e.name, e.message, e.type, describeError(e.cause, depth + 1), ...(e.partitions ?? []).map((p) => describeError(p.error, depth + 1))]
    .filter(Boolean)
    .join(' ');
}

async function expectRefused(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(error).toBeDefined();
  expect(describeError(error)).toMatch(pattern);
}

describe('the audit principal (service certificate "audit")', () => {
  let kafka: Kafka;
  beforeAll(() => {
    kafka = kafkaClient({ brokers: brokers(), identity: audit, clientId: 'audit', logLevel: 'error' });
  });

  it('creates an audit topic with cleanup.policy=delete, writes with an idempotent producer and a transaction, and reads committed records back', async () => {
    const admin = track(kafka.admin());
    await admin.connect();
    await expect(
      admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic,
            numPartitions: 1,
            configEntries: [
              { name: 'cleanup.policy', value: 'delete' },
              { name: 'retention.ms', value: String(365 * 24 * 3600 * 1000) },
            ],
          },
        ],
      }),
    ).resolves.toBe(true);

    const described = await platformAdmin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['cleanup.policy', 'retention.ms'] }],
    });
    const configs = Object.fromEntries(described.resources[0].configEntries.map((c) => [c.configName, c.configValue]));
    expect(configs).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': '31536000000' });

    const producer: Producer = track(kafka.producer({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'tenant-a', value: 'idempotent' }] });

    const transactional: Producer = track(
      kafka.producer({ transactionalId: `palisade-audit-test-${suffix}`, idempotent: true, maxInFlightRequests: 1 }),
    );
    await transactional.connect();
    const committed = await transactional.transaction();
    await committed.send({ topic, messages: [{ key: 'tenant-a', value: 'committed' }] });
    await committed.commit();
    const aborted = await transactional.transaction();
    await aborted.send({ topic, messages: [{ key: 'tenant-a', value: 'aborted' }] });
    await aborted.abort();
    const last = await transactional.transaction();
    await last.send({ topic, messages: [{ key: 'tenant-a', value: 'last' }] });
    await last.commit();

    const consumer: Consumer = track(kafka.consumer({ groupId: `palisade-audit-test-${suffix}`, readUncommitted: false }));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const values = await new Promise<string[]>((resolve, reject) => {
      const seen: string[] = [];
      const timer = setTimeout(() => reject(new Error(`timed out; read ${JSON.stringify(seen)}`)), 20_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(String(message.value));
          if (seen.includes('last')) {
            clearTimeout(timer);
            resolve(seen);
          }
        },
      });
    });
    expect(values).toEqual(['idempotent', 'committed', 'last']);
  });

  it('cannot delete the audit topic or its records, change its retention or add partitions (write-once)', async () => {
    const admin = track(kafka.admin({ retry: { retries: 0 } }));
    await admin.connect();
    await expectRefused(admin.deleteTopics({ topics: [topic], timeout: 5000 }), /TOPIC_AUTHORIZATION_FAILED/);
    await expectRefused(
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '1000' }] }],
      }),
      /TOPIC_AUTHORIZATION_FAILED/,
    );
    await expectRefused(admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '-1' }] }), /TOPIC_AUTHORIZATION_FAILED/);
    await expectRefused(admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] }), /TOPIC_AUTHORIZATION_FAILED/);
    // Still there, untouched.
    const described = await platformAdmin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
    });
    expect(described.resources[0].configEntries[0].configValue).toBe('31536000000');
  });
});

describe('refusals', () => {
  it('denies another service ("policy") writing to the audit topic', async () => {
    const kafka = kafkaClient({ brokers: brokers(), identity: await identity('service', 'policy'), clientId: 'policy', ...fast });
    const producer = track(kafka.producer({ idempotent: false, retry: { retries: 0 } }));
    await producer.connect();
    await expectRefused(producer.send({ topic, acks: -1, messages: [{ value: 'forged' }] }), /TOPIC_AUTHORIZATION_FAILED/);
  });

  it('refuses a client that presents no certificate', async () => {
    const ca = (await identity('service', 'audit')).current().caPem;
    const kafka = new Kafka({ brokers: [brokers()], ssl: { ca, minVersion: 'TLSv1.3' }, logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 3000 });
    const admin = track(kafka.admin());
    await expectRefused(admin.connect().then(() => admin.listTopics()), /alert bad certificate/);
  });

  it('refuses a plaintext client', async () => {
    const kafka = new Kafka({ brokers: [brokers()], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 3000, requestTimeout: 3000 });
    const admin = track(kafka.admin());
    await expectRefused(admin.connect().then(() => admin.listTopics()), /Closed connection/);
  });

  it('refuses a certificate from another CA, and TLS 1.2', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'palisade-other-ca-'));
    try {
      const { ca: otherCa } = await ensureCa(otherDir);
      const forged = await issueCertificate(otherCa, { kind: 'service', name: 'audit' });
      const caPem = audit.current().caPem;
      const foreign: KafkaIdentity = { current: () => ({ ...audit.current(), certPem: forged.certPem, keyPem: forged.keyPem, caPem }) };
      const admin = track(kafkaClient({ brokers: brokers(), identity: foreign, clientId: 'forged', ...fast }).admin());
      await expectRefused(admin.connect().then(() => admin.listTopics()), /alert certificate unknown/);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }

    const [host, port] = brokers().split(',')[0].split(':');
    const { certPem, keyPem, caPem } = audit.current();
    const handshake = new Promise<void>((resolve, reject) => {
      const socket = tls.connect({ host, port: Number(port), cert: certPem, key: keyPem, ca: caPem, maxVersion: 'TLSv1.2' }, () => {
        socket.destroy();
        resolve();
      });
      socket.on('error', reject);
    });
    await expectRefused(handshake, /alert protocol version/);
  });
});
