import { randomUUID } from 'node:crypto';
import { ConfigResourceTypes, Partitioners, type Admin, type Kafka, type KafkaMessage, type ProducerConfig } from '@palisade/kafka';
import type { AuditConfig } from '../audit.config';
import { LRUCache } from 'lru-cache';

/** The Kafka side of the audit log: its topics, partitioning and reading ranges back. */

export interface TopicSettings {
  topic: string;
  checkpointTopic: string;
  partitions: number;
  replicationFactor: number;
  minInsyncReplicas: number;
  retentionMs: number;
}

export const topicSettingsOf = (c: AuditConfig): TopicSettings => ({
  topic: c.AUDIT_TOPIC,
  checkpointTopic: c.AUDIT_CHECKPOINT_TOPIC,
  partitions: c.AUDIT_PARTITIONS,
  replicationFactor: c.AUDIT_REPLICATION_FACTOR,
  minInsyncReplicas: c.AUDIT_MIN_INSYNC_REPLICAS,
  retentionMs: c.AUDIT_RETENTION_MS,
});

/**
 * Largest record the audit topics take (Kafka's default is 1 MB). An event is at most
 * NATS's max_payload (1 MiB); its record adds the chain members and, for personal
 * data, the ciphertext's base64 expansion (4/3), so every event that JetStream can
 * deliver fits, and a large event never stalls ingest behind a refused transaction.
 */
export const RECORD_MAX_BYTES = 8 * 1024 * 1024;

/** The contract's topic settings: delete-only retention, never compacted. */
export function topicConfigEntries(s: TopicSettings): Array<{ name: string; value: string }> {
  return [
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'retention.ms', value: String(s.retentionMs) },
    { name: 'retention.bytes', value: '-1' },
    { name: 'min.insync.replicas', value: String(s.minInsyncReplicas) },
    { name: 'unclean.leader.election.enable', value: 'false' },
    { name: 'message.timestamp.type', value: 'CreateTime' },
    { name: 'max.message.bytes', value: String(RECORD_MAX_BYTES) },
  ];
}

/**
 * Create the audit and checkpoint topics when missing (the checkpoint topic with one
 * partition: checkpoints of every partition in one order); check that existing ones are
 * delete-only, never compacted. Returns the audit topic's partition count.
 */
export async function ensureAuditTopics(admin: Admin, s: TopicSettings, log: (msg: string) => void = () => undefined): Promise<number> {
  const existing = new Set(await admin.listTopics());
  const missing = [
    { topic: s.topic, numPartitions: s.partitions },
    { topic: s.checkpointTopic, numPartitions: 1 },
  ].filter((t) => !existing.has(t.topic));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({ ...t, replicationFactor: s.replicationFactor, configEntries: topicConfigEntries(s) })),
    });
  }
  await checkDeleteOnly(admin, s, log);
  const metadata = await admin.fetchTopicMetadata({ topics: [s.topic] });
  return metadata.topics[0].partitions.length;
}

/**
 * Refuse a compacted audit topic. Reading topic configs needs DescribeConfigs, which the
 * local ACLs (deploy/local/kafka/acls.sh) do not grant the audit principal: then the
 * check is skipped with a warning (production should grant it; README).
 */
async function checkDeleteOnly(admin: Admin, s: TopicSettings, log: (msg: string) => void): Promise<void> {
  let described;
  try {
    described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [s.topic, s.checkpointTopic].map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy'] })),
    });
  } catch (error) {
    if (/authoriz/i.test((error as Error).message)) {
      log(`cannot read the audit topics' configs (no DescribeConfigs ACL): cleanup.policy not checked`);
      return;
    }
    throw error;
  }
  for (const resource of described.resources) {
    const policy = resource.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue;
    if (policy !== 'delete') throw new Error(`topic ${resource.resourceName} has cleanup.policy=${policy}: an audit topic must be delete-only, never compacted`);
  }
}

/**
 * The writer's partitioner: the message's own partition (the writer names one for every
 * record and checkpoint), else the default's choice. kafkajs' default copies the partition
 * list (a `filter`) for every message before it looks at the message's partition.
 */
export const explicitPartitioner: NonNullable<ProducerConfig['createPartitioner']> = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => args.message.partition ?? fallback(args);
};

const partitioner = Partitioners.DefaultPartitioner();
/**
 * Tenants' partitions, remembered per topic and partition count (murmur2 and its metadata
 * per event cost ~2 % of ingest): looked up by the tenant alone, no key built per event.
 */
const partitionCaches = new Map<string, { partitions: number; byKey: LRUCache<string, number> }>();

/** The partition Kafka's default (murmur2) partitioner gives a key: where a tenant's chain lives. */
export function partitionOf(topic: string, key: string, partitions: number): number {
  let cache = partitionCaches.get(topic);
  if (cache?.partitions !== partitions) partitionCaches.set(topic, (cache = { partitions, byKey: new LRUCache<string, number>({ max: 10_000 }) }));
  const cached = cache.byKey.get(key);
  if (cached !== undefined) return cached;
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0, offlineReplicas: [] }));
  const partition = partitioner({ topic, partitionMetadata, message: { key, value: null } });
  cache.byKey.set(key, partition);
  return partition;
}

/** Per partition: the offset after the last one (high watermark). */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  return (await offsetBounds(admin, topic)).ends;
}

/** Per partition, from one request: the first offset still held (low) and the offset after the last one (high watermark). */
export async function offsetBounds(admin: Admin, topic: string): Promise<{ lows: Map<number, bigint>; ends: Map<number, bigint> }> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return { lows: new Map(offsets.map((o) => [o.partition, BigInt(o.low)])), ends: new Map(offsets.map((o) => [o.partition, BigInt(o.high)])) };
}

export interface ReadRecord<V = string> {
  partition: number;
  offset: bigint;
  value: V;
}

/**
 * Read committed records of `topic` from `from` (per partition, inclusive) up to the
 * end offsets `until` (exclusive), in order per partition, handing them over in
 * batches (the callback returns false to stop early). Transaction markers and aborted records take offsets but are not records:
 * a partition is done when the reader's position reaches its end offset.
 */
export function readRange(
  kafka: Kafka,
  topic: string,
  from: ReadonlyMap<number, bigint>,
  until: ReadonlyMap<number, bigint>,
  onBatch: (records: ReadRecord[]) => Promise<void | false>,
  options: { groupPrefix: string; timeoutMs?: number },
): Promise<void> {
  return readRangeRaw(kafka, topic, from, until, (records) => onBatch(records.map((r) => ({ ...r, value: r.value.toString('utf8') }))), options);
}

/** readRange with the values as Kafka gave them (bytes), for readers that hand them on. */
export async function readRangeRaw(
  kafka: Kafka,
  topic: string,
  from: ReadonlyMap<number, bigint>,
  until: ReadonlyMap<number, bigint>,
  onBatch: (records: Array<ReadRecord<Buffer>>) => Promise<void | false>,
  options: { groupPrefix: string; timeoutMs?: number; maxBytesPerPartition?: number },
): Promise<void> {
  const remaining = new Map<number, bigint>();
  for (const [partition, end] of until) {
    const start = from.get(partition) ?? 0n;
    if (start < end) remaining.set(partition, start);
  }
  if (remaining.size === 0) return;
  const consumer = kafka.consumer({
    groupId: `${options.groupPrefix}-${randomUUID()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
    ...(options.maxBytesPerPartition ? { maxBytesPerPartition: options.maxBytesPerPartition, maxBytes: Math.max(10 * 1024 * 1024, options.maxBytesPerPartition * 4) } : {}),
  });
  let settle!: (error?: Error) => void;
  const done = new Promise<void>((resolve, reject) => (settle = (error) => (error ? reject(error) : resolve())));
  // A consumer that fails to join its group crashes (settling `done`) and also rejects `run()`, before
  // anything awaits `done`: left unhandled, that rejection would end the process. The failure still
  // reaches the caller, from `run()` or from `await done`.
  done.catch(() => undefined);
  const advance = (partition: number, lastOffset: string) => {
    const position = BigInt(lastOffset) + 1n;
    if (!remaining.has(partition)) return;
    if (position >= until.get(partition)!) remaining.delete(partition);
    if (remaining.size === 0) settle();
  };
  const timer = setTimeout(() => settle(new Error(`reading ${topic} back did not finish within ${options.timeoutMs ?? 120_000} ms`)), options.timeoutMs ?? 120_000);
  try {
    await consumer.connect();
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => advance(e.payload.partition, e.payload.lastOffset));
    consumer.on(consumer.events.CRASH, (e) => settle(e.payload.error));
    await consumer.subscribe({ topic, fromBeginning: true });
    const starts = new Map(remaining);
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const end = until.get(batch.partition);
        if (end === undefined || !remaining.has(batch.partition)) return;
        const records = batch.messages
          .filter((m: KafkaMessage) => BigInt(m.offset) < end && m.value)
          .map((m: KafkaMessage) => ({ partition: batch.partition, offset: BigInt(m.offset), value: m.value! }));
        if (records.length > 0) {
          // A failing or stopping callback ends the read at once (no kafkajs retries).
          const outcome = await onBatch(records).catch((error: Error) => error);
          if (outcome instanceof Error) return settle(outcome);
          if (outcome === false) return settle();
        }
        resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
    // Partitions with nothing to read start at their end, so they are not fetched at all.
    for (const [partition, end] of until) {
      consumer.seek({ topic, partition, offset: (starts.get(partition) ?? end).toString() });
    }
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
}
