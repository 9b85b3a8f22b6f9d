import { randomUUID } from 'node:crypto';
import type { AuditRecord, Checkpoint } from '@palisade/audit-log';
import type { Admin, Consumer, EachBatchPayload, Kafka } from '@palisade/kafka';
import type { Logger } from '@palisade/observability';
import type { Transactions } from '../audit.events';
import type { TopicSettings } from '../ingest/audit-topic';
import { advanceCursor, backoffMs, batches, CONFIG_ERROR_RETRY_MS, DEFAULT_BACKOFF, DEFAULT_BATCH_LIMITS, type Backoff, type BatchLimits, type FailureClass } from './feed-policy';
import type { FeedItem } from './feed-format';
import type { Feed, FeedsRepository } from './feeds.repository';
import { DeliveryError, type FeedSender } from './senders';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FeedWorkerDeps {
  kafka: Kafka;
  admin: Admin;
  settings: TopicSettings;
  transactions: Transactions;
  repository: Pick<FeedsRepository, 'cursorsOf' | 'advance' | 'recordError'>;
  logger: Logger;
  limits?: BatchLimits;
  backoff?: Backoff;
  /** Metrics: items (records and checkpoints) the SIEM acknowledged; failed attempts by class. */
  onDelivered?: (count: number) => void;
  onFailed?: (failure: FailureClass) => void;
}

/** One encoded item: its offset, and the text the sender's format made of it. */
export interface Encoded {
  offset: bigint;
  text: string;
}

class Stopped extends Error {}


/**
 * Delivers one feed: reads the audit topic (the feed's tenant's records) and the
 * checkpoint topic (every checkpoint) with read_committed from the feed's cursors, in
 * order per partition, sends batches and moves each cursor only after the SIEM
 * acknowledged. A failed batch is retried with backoff, for ever, in place: nothing
 * after it is sent before it, so the SIEM gets no gap. Kafka is read with a consumer of
 * a group of its own (one per run) positioned by seek(); the group's own offsets are
 * never used, PostgreSQL holds the cursor.
 */
export class FeedWorker {
  private consumer: Consumer | undefined;
  private stopping = false;
  /** Next offset per "topic/partition", as in PostgreSQL. */
  private readonly positions = new Map<string, bigint>();
  private readonly limits: BatchLimits;
  private readonly backoff: Backoff;
  crashed: Error | undefined;

  constructor(
    readonly feed: Feed,
    private readonly sender: FeedSender,
    private readonly encode: (item: FeedItem) => string,
    private readonly frame: (texts: string[]) => string,
    private readonly deps: FeedWorkerDeps,
  ) {
    this.limits = deps.limits ?? DEFAULT_BATCH_LIMITS;
    this.backoff = deps.backoff ?? DEFAULT_BACKOFF;
  }

  async start(): Promise<void> {
    const { kafka, admin, settings, repository, transactions } = this.deps;
    for (const c of await transactions.inTransaction((tx) => repository.cursorsOf(tx, this.feed.id))) this.positions.set(`${c.topic}/${c.partition}`, c.nextOffset);
    const metadata = await admin.fetchTopicMetadata({ topics: [settings.topic, settings.checkpointTopic] });
    const consumer = kafka.consumer({
      groupId: `palisade-audit-feed-${this.feed.id}-${randomUUID()}`,
      readUncommitted: false,
      maxWaitTimeInMs: 250,
      sessionTimeout: 30_000,
      heartbeatInterval: 3000,
      // A crash restarts the whole worker from PostgreSQL's cursors, not kafkajs' group offsets.
      retry: { retries: 5, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      if (this.stopping) return;
      this.crashed = e.payload.error;
      this.deps.logger.warn({ feedId: this.feed.id, err: e.payload.error.message }, 'SIEM feed reader stopped; restarting it from its cursors');
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [settings.topic, settings.checkpointTopic], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.onBatch(payload) });
    for (const t of metadata.topics) {
      for (const p of t.partitions) consumer.seek({ topic: t.name, partition: p.partitionId, offset: (this.positions.get(`${t.name}/${p.partitionId}`) ?? 0n).toString() });
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Closing the sender first ends a request in flight, so the batch handler returns at once.
    this.sender.close();
    await this.consumer?.disconnect().catch(() => undefined);
  }

  private decode(topic: string, value: string): FeedItem | undefined {
    if (topic === this.deps.settings.checkpointTopic) return { kind: 'checkpoint', checkpoint: JSON.parse(value) as Checkpoint };
    const record = JSON.parse(value) as AuditRecord;
    return record.event?.tenantId === this.feed.tenantId ? { kind: 'record', record } : undefined;
  }

  private async onBatch({ batch, heartbeat, resolveOffset }: EachBatchPayload): Promise<void> {
    if (this.stopping || batch.isEmpty()) return;
    const key = `${batch.topic}/${batch.partition}`;
    let position = this.positions.get(key) ?? 0n;
    const selected: Encoded[] = [];
    for (const m of batch.messages) {
      const offset = BigInt(m.offset);
      // Below the cursor: delivered before (a fetch may start earlier than the seek).
      if (offset < position || !m.value) continue;
      let item: FeedItem | undefined;
      try {
        item = this.decode(batch.topic, m.value.toString('utf8'));
      } catch (error) {
        this.deps.logger.error({ feedId: this.feed.id, topic: batch.topic, partition: batch.partition, offset: m.offset, err: (error as Error).message }, 'unreadable audit topic value skipped by a SIEM feed');
      }
      if (item) selected.push({ offset, text: this.encode(item) });
    }
    const end = BigInt(batch.lastOffset()) + 1n;
    try {
      const groups = batches(selected, (s) => Buffer.byteLength(s.text) + 16, this.limits);
      for (let i = 0; i < groups.length; i++) {
        const group = groups[i];
        await this.deliver(group, heartbeat);
        position = advanceCursor(position, group[group.length - 1].offset, i === groups.length - 1 ? end : undefined);
        await this.persist(batch.topic, batch.partition, position, true, heartbeat);
      }
      if (groups.length === 0 && end > position) {
        position = end;
        await this.persist(batch.topic, batch.partition, position, false, heartbeat);
      }
      // The reader's own position: without it kafkajs fetches this batch again (the cursor is PostgreSQL's).
      resolveOffset(batch.lastOffset());
      await heartbeat().catch(() => undefined);
    } catch (error) {
      if (error instanceof Stopped) return;
      throw error;
    }
  }

  /** Send a batch until the SIEM takes it, waiting with backoff (and heartbeats) in between. */
  private async deliver(group: Encoded[], heartbeat: () => Promise<void>): Promise<void> {
    const payload = this.frame(group.map((g) => g.text));
    for (let attempt = 1; ; attempt++) {
      if (this.stopping) throw new Stopped();
      try {
        await this.sender.send(payload);
        this.deps.onDelivered?.(group.length);
        return;
      } catch (error) {
        const e = error instanceof DeliveryError ? error : new DeliveryError('network', (error as Error).message);
        this.deps.onFailed?.(e.failure);
        const wait = e.retryable ? backoffMs(attempt, Math.random(), this.backoff, e.retryAfterMs) : CONFIG_ERROR_RETRY_MS;
        if (attempt === 1 || attempt % 20 === 0) {
          this.deps.logger.warn({ feedId: this.feed.id, failure: e.failure, reason: e.message, attempt, retryInMs: wait }, 'SIEM feed delivery failed; retrying');
        }
        await this.deps.transactions.inTransaction((tx) => this.deps.repository.recordError(tx, this.feed.id, `${e.failure}: ${e.message}`)).catch(() => undefined);
        await this.pause(wait, heartbeat);
      }
    }
  }

  private async persist(topic: string, partition: number, next: bigint, delivered: boolean, heartbeat: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.deps.transactions.inTransaction((tx) => this.deps.repository.advance(tx, this.feed.id, topic, partition, next, delivered));
        this.positions.set(`${topic}/${partition}`, next);
        return;
      } catch (error) {
        if (this.stopping) throw new Stopped();
        this.deps.logger.warn({ feedId: this.feed.id, err: (error as Error).message }, 'SIEM feed cursor not saved; retrying');
        await this.pause(backoffMs(attempt, Math.random(), this.backoff), heartbeat);
      }
    }
  }

  /** Wait, heartbeating so the consumer keeps its partitions, and give up at once when stopping. */
  private async pause(ms: number, heartbeat: () => Promise<void>): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (this.stopping) throw new Stopped();
      await sleep(Math.min(250, until - Date.now()));
      await heartbeat().catch(() => undefined);
    }
  }
}
