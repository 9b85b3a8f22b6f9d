import { emptyHead, type AuditRecord, type ChainHead } from '@palisade/audit-log';
import type { Admin, Kafka, Producer } from '@palisade/kafka';
import type { Logger } from '@palisade/observability';
import { endOffsets, ensureAuditTopics, explicitPartitioner, readRange, type TopicSettings } from './audit-topic';
import { indexRowOf, type IndexRow } from './index-rows';
import type { RecordIndex } from './record-index';

export interface RecoveryOptions {
  kafka: Kafka;
  admin: Admin;
  settings: TopicSettings;
  /** Kafka transactional id: one writer per id; a new one fences the old. */
  transactionalId: string;
  index: Pick<RecordIndex, 'heads' | 'clear' | 'index'>;
  logger: Logger;
  /** Warnings about the topics' settings (said once by the caller). */
  warn: (message: string) => void;
}

export interface Recovered {
  /** The writer's transactional producer, every other writer with its id fenced. */
  producer: Producer;
  partitions: number;
  heads: Map<number, ChainHead>;
  /** Records read back from the topic and indexed. */
  indexedFromTopic: number;
}

/**
 * Fence other writers, bring the index up to the topic's end and take the chain heads
 * from the topic itself. When `rebuild()` (asked once the producer is fenced) says so, the
 * index is emptied first, so the whole topic is read back, every link checked.
 */
export async function recoverChains(o: RecoveryOptions, rebuild: () => boolean): Promise<Recovered> {
  const { kafka, admin, settings } = o;
  const partitions = await ensureAuditTopics(admin, settings, o.warn);
  const producer = kafka.producer({
    transactionalId: o.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 60_000,
    // The coordinator answers CONCURRENT_TRANSACTIONS while it completes the previous
    // commit (a few ms): retry that quickly, not after kafkajs' default 300 ms.
    retry: { initialRetryTime: 10, maxRetryTime: 2000, retries: 10 },
    createPartitioner: explicitPartitioner,
  });
  try {
    await producer.connect();
    // An empty transaction initializes the producer id: this bumps the epoch, fences any
    // other producer with our transactional id and aborts a transaction it left open.
    const fence = await producer.transaction();
    await fence.abort();

    if (rebuild()) {
      const removed = await o.index.clear();
      o.logger.warn({ topic: settings.topic, removed }, 'record index emptied: rebuilding it from the topic');
    }
    const indexed = await o.index.heads();
    const heads = new Map<number, ChainHead>();
    for (let p = 0; p < partitions; p++) heads.set(p, emptyHead(p));
    const from = new Map<number, bigint>();
    for (const h of indexed) {
      heads.set(h.partition, { partition: h.partition, seq: h.seq, hash: h.hash });
      from.set(h.partition, h.offset + 1n);
    }
    const ends = await endOffsets(admin, settings.topic);
    let caughtUp = 0;
    await readRange(
      kafka,
      settings.topic,
      from,
      ends,
      async (batch) => {
        const rows: IndexRow[] = [];
        for (const r of batch) {
          const record = JSON.parse(r.value) as AuditRecord;
          const head = heads.get(r.partition)!;
          if (record.partition !== r.partition || record.seq !== head.seq + 1 || record.prev !== head.hash) {
            throw new Error(`the audit topic's chain is broken at partition ${r.partition} offset ${r.offset} (seq ${record.seq} after ${head.seq}); refusing to extend it`);
          }
          heads.set(r.partition, { partition: r.partition, seq: record.seq, hash: record.hash });
          rows.push(indexRowOf(record, r.offset, r.value));
        }
        await o.index.index(rows);
        caughtUp += rows.length;
      },
      { groupPrefix: `${o.transactionalId}-recovery` },
    );
    return { producer, partitions, heads, indexedFromTopic: caughtUp };
  } catch (error) {
    await producer.disconnect().catch(() => undefined);
    throw error;
  }
}
