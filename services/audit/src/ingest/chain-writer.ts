import type { KeyObject } from 'node:crypto';
import type { ChainHead, RecordedEvent } from '@palisade/audit-log';
import { eventForgeryDetected, systemEventContext, type EventEnvelope } from '@palisade/contracts';
import type { Admin, Kafka, Producer, RecordMetadata } from '@palisade/kafka';
import type { Logger } from '@palisade/observability';
import type { TopicSettings } from './audit-topic';
import { chainBatch, dueCheckpoints, sealRefusalReport, splitRepeats, type ChainBase, type CheckpointState, type Delivery, type Pending, type Prepared } from './chain-batch';
import { recoverChains } from './chain-recovery';
import { IdFilter } from './id-filter';
import { indexRowsOf } from './index-rows';
import type { RecordIndex } from './record-index';
import { setTimeout as sleep } from 'node:timers/promises';

/** What to chain in place of event `index`, whose producer-sealed `personal` failed its check. */
export type RefuseSealed = (index: number, problems: string[]) => RecordedEvent;

/**
 * Seals an event's `personal` member (per-data-subject key) before it is chained, and
 * checks one its producer had sealed already (`refuse` for one that fails).
 */
export interface PersonalDataSealer {
  sealAll(events: readonly EventEnvelope[], refuse: RefuseSealed): Promise<RecordedEvent[]>;
}

/** The checkpoint signing key in use. */
export interface CheckpointSigner {
  current(): Promise<{ kid: string; privateKey: KeyObject }>;
}

export interface ChainWriterOptions {
  kafka: Kafka;
  admin: Admin;
  settings: TopicSettings;
  /** Kafka transactional id: one writer per id; a new one fences the old. */
  transactionalId: string;
  /** The record index of `settings.topic` (record-index.ts). */
  index: Pick<RecordIndex, 'knownEventIds' | 'heads' | 'clear' | 'index'> & Partial<Pick<RecordIndex, 'eventIdCount' | 'eachEventId'>>;
  sealer: PersonalDataSealer;
  signer: CheckpointSigner;
  logger: Logger;
  now?: () => Date;
  batchMax?: number;
  onCommitted?: (count: number, oldestQueuedAtMs: number) => void;
}

export type WriterState = 'inactive' | 'recovering' | 'active' | 'failing';

/** A batch taken from the queue and being prepared; `batch` is what it holds meanwhile. */
interface Stage {
  batch: Pending[];
  prepared: Promise<Prepared>;
}

/** How long the first event of a small batch may wait for more (ms). */
const LINGER_MS = 5;
/** The id filter is sized for at least this many ids (1.25 MB), and twice the ids it starts with. */
const MIN_FILTER_IDS = 1_000_000;


/**
 * The only writer of the audit topic's hash chains (while it holds the lease).
 *
 * `append(event)` resolves once the event is in a committed Kafka transaction (or was
 * already in the topic): the consumer acknowledges JetStream only then. Events are
 * chained in batches (chain-batch.ts), one transaction per batch holding the records and
 * any due checkpoints, so a batch is in the topic entirely or not at all.
 *
 * Exactly once by event id: before a batch is chained, its ids are looked up in the
 * record index (PostgreSQL) and in the set written since the index was last brought
 * up to date. The index is complete because recovery (chain-recovery.ts) — run on
 * activation and after any failure — first fences every other writer (a new
 * transactional producer with the same id aborts what a predecessor left open), then
 * reads the topic from the last indexed offset to its end (read_committed) and indexes
 * what it finds; the last record of each partition is the chain head.
 */
export class ChainWriter {
  private producer: Producer | undefined;
  private heads = new Map<number, ChainHead>();
  private partitions = 0;
  private readonly checkpoints = new Map<number, CheckpointState>();
  private queue: Pending[] = [];
  private readonly unindexed = new Set<string>();
  /** Ids whose index rows are written; they leave `unindexed` when the next lookup starts. */
  private indexedIds: string[][] = [];
  private indexing: Promise<void> = Promise.resolve();
  private needsRecovery = true;
  private inFlightSince: number | undefined;
  private running: Promise<void> | undefined;
  private active = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current: { state: WriterState; reason?: string; since: number } = { state: 'inactive', since: Date.now() };
  private rebuilds: Array<{ resolve: (indexed: number) => void; reject: (error: Error) => void }> = [];
  private readonly now: () => Date;
  private readonly batchMax: number;
  private readonly warned = new Set<string>();
  /** Every id in the topic (no false negatives), once loaded after recovery: most ids need no PostgreSQL lookup. */
  private filter: IdFilter | undefined;
  /** The filter being loaded from the index (commits are added to it too). */
  private loadingFilter: IdFilter | undefined;
  private filterGeneration = 0;

  constructor(private readonly options: ChainWriterOptions) {
    this.now = options.now ?? (() => new Date());
    this.batchMax = options.batchMax ?? 2000;
  }

  /** `dedup`: whether fresh ids are told from memory (the id filter) or by asking the index. */
  status(): { state: WriterState; reason?: string; since: number; queued: number; oldestWaitMs: number; dedup: 'memory' | 'index' } {
    const oldest = this.inFlightSince ?? this.queue[0]?.queuedAt;
    return { ...this.current, queued: this.queue.length, oldestWaitMs: oldest === undefined ? 0 : Date.now() - oldest, dedup: this.filter ? 'memory' : 'index' };
  }

  /**
   * Chain `event` (`delivery`: where it was consumed, for a report if it is refused);
   * resolves when Kafka committed it. Rejects when the writer is deactivated first.
   */
  append(event: EventEnvelope, delivery?: Delivery): Promise<void> {
    if (!this.active) return Promise.reject(new Error('audit writer is not active (another instance holds the lease)'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ event, delivery, queuedAt: Date.now(), resolve, reject });
      if (this.queue.length === 1 || this.queue.length >= this.batchMax) this.wake?.();
    });
  }

  /**
   * Rebuild the record index from the topic: empty it, then recover (which reads the
   * whole topic back, checking every link, before anything new is chained). Resolves with
   * the number of records indexed.
   */
  rebuildIndex(): Promise<number> {
    if (!this.active) return Promise.reject(new Error('audit writer is not active (another instance holds the lease)'));
    return new Promise<number>((resolve, reject) => {
      this.rebuilds.push({ resolve, reject });
      this.needsRecovery = true;
      this.wake?.();
    });
  }

  /** Start writing: recover the chain heads from the topic, then chain what arrives. */
  activate(): void {
    if (this.active) return;
    this.active = true;
    this.needsRecovery = true;
    this.running = this.run();
    this.timer = setInterval(() => {
      if (dueCheckpoints(Date.now(), this.checkpoints).length > 0) this.wake?.();
    }, 1000);
    this.timer.unref();
  }

  /** Stop writing (lease lost or shutting down): waiting events are refused, to be redelivered. */
  async deactivate(reason: string): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.dropFilter();
    clearInterval(this.timer);
    this.wake?.();
    const refused = this.queue.splice(0);
    for (const p of refused) p.reject(new Error(`audit writer stopped: ${reason}`));
    for (const r of this.rebuilds.splice(0)) r.reject(new Error(`audit writer stopped: ${reason}`));
    await this.running;
    await this.indexing;
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
    this.setState('inactive', reason);
  }

  /**
   * Batches go through two stages: chained (ids checked, records hashed, checkpoints
   * signed) and committed. While Kafka commits one batch, the next is chained on top of
   * it, so the CPU work and the broker's round trips overlap. If a commit fails, the
   * batch chained on top of it is dropped with it and both go back to the queue.
   */
  private async run(): Promise<void> {
    let backoff = 250;
    let next: Stage | undefined;
    while (this.active) {
      let current: Stage | undefined;
      try {
        if (this.needsRecovery) {
          // A batch chained on top of heads that recovery may change is chained again.
          if (next) {
            await next.prepared.catch(() => undefined);
            this.queue.unshift(...next.batch);
            next = undefined;
          }
          this.setState('recovering', this.current.reason);
          await this.recover();
          this.needsRecovery = false;
          this.setState('active');
          backoff = 250;
        }
        if (next) {
          current = next;
          next = undefined;
        } else {
          const due = dueCheckpoints(Date.now(), this.checkpoints);
          if (this.queue.length === 0 && due.length === 0) {
            // Deactivated while recovering: its wake-up came before anyone waited for it.
            if (!this.active) break;
            await new Promise<void>((resolve) => (this.wake = resolve));
            this.wake = undefined;
            continue;
          }
          // Linger briefly when the batch is small: a transaction per handful of events
          // costs more than the few milliseconds of waiting for more.
          const lingerMs = this.queue.length > 0 && this.queue.length < this.batchMax ? LINGER_MS - (Date.now() - this.queue[0].queuedAt) : 0;
          if (lingerMs > 0) await sleep(lingerMs);
          current = this.stage({ heads: this.heads, counts: this.checkpoints, freshIds: new Set() }, due);
        }
        const prepared = await current.prepared;
        this.inFlightSince = prepared.batch[0]?.queuedAt ?? Date.now();
        const committing = this.commit(prepared);
        try {
          if (await this.fullBatchBefore(committing)) next = this.stage(prepared, dueCheckpoints(Date.now(), prepared.counts));
          await committing;
        } finally {
          this.inFlightSince = undefined;
        }
        backoff = 250;
      } catch (error) {
        // Nothing of a failed batch, nor of the one chained on top of it, is committed.
        const dropped = next;
        next = undefined;
        if (dropped) await dropped.prepared.catch(() => undefined);
        this.queue.unshift(...(current?.batch ?? []), ...(dropped?.batch ?? []));
        if (!this.active) break;
        const reason = describe(error);
        this.needsRecovery = true;
        this.setState('failing', reason);
        this.options.logger.error({ err: reason, retryInMs: backoff, queued: this.queue.length }, 'audit chain writer failed; events wait in JetStream');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
    // Deactivated: what is chained but not committed, or was put back after a failure,
    // is refused, to be redelivered by JetStream to the next writer.
    if (next) {
      await next.prepared.catch(() => undefined);
      this.queue.unshift(...next.batch);
    }
    for (const p of this.queue.splice(0)) p.reject(new Error('audit writer stopped'));
  }

  /**
   * Whether a full batch is queued while `committing` is still in flight: only then is the
   * next batch chained on top of it. A batch taken as soon as the previous one was chained
   * held the few events that had arrived by then (every third transaction held 2 events
   * under a backlog, measured) and cost a whole transaction; otherwise the next batch is
   * taken after the commit, with what arrived meanwhile.
   */
  private async fullBatchBefore(committing: Promise<void>): Promise<boolean> {
    let settled = false;
    const done = committing.then(
      () => (settled = true),
      () => (settled = true),
    );
    while (!settled && this.active && this.queue.length < this.batchMax) {
      await Promise.race([done, new Promise<void>((resolve) => (this.wake = resolve))]);
      this.wake = undefined;
    }
    return !settled && this.active;
  }

  /** Recover (chain-recovery.ts) and start over from what the topic holds. */
  private async recover(): Promise<void> {
    // The topic may hold what this writer never saw (a commit it thought failed, a predecessor's).
    this.dropFilter();
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
    await this.indexing.catch(() => undefined);
    let rebuilds: typeof this.rebuilds = [];
    const { kafka, admin, settings, transactionalId, index, logger } = this.options;
    const recovered = await recoverChains({ kafka, admin, settings, transactionalId, index, logger, warn: (msg) => this.warnOnce(msg) }, () => {
      rebuilds = [...this.rebuilds];
      return rebuilds.length > 0;
    });
    this.producer = recovered.producer;
    this.partitions = recovered.partitions;
    this.heads = recovered.heads;
    this.unindexed.clear();
    this.indexedIds = [];
    const now = Date.now();
    this.checkpoints.clear();
    // What the last checkpoint covers is not known here: seal every non-empty chain's head soon.
    for (const h of this.heads.values()) this.checkpoints.set(h.partition, { count: 0, since: h.seq > 0 ? now : undefined });
    this.rebuilds = this.rebuilds.filter((r) => !rebuilds.includes(r));
    for (const r of rebuilds) r.resolve(recovered.indexedFromTopic);
    // The index now holds the whole topic: load the id filter from it, off the commit path.
    void this.loadFilter();
    logger.info(
      { partitions: this.partitions, indexedFromTopic: recovered.indexedFromTopic, heads: [...this.heads.values()].map((h) => ({ partition: h.partition, seq: h.seq })) },
      'audit chain heads recovered from the topic',
    );
  }

  /** Take the next batch from the queue and chain it on top of `base` (committed, or in flight). */
  private stage(base: ChainBase, due: number[]): Stage {
    const batch = this.queue.splice(0, this.batchMax);
    const prepared = this.prepare(batch, this.lookup(batch), due, base);
    // Awaited by the loop; a stage dropped after a failure must not surface as unhandled.
    prepared.catch(() => undefined);
    return { batch, prepared };
  }

  /**
   * Which of these events' ids are already chained: the record index (PostgreSQL) plus the
   * ids committed but not yet indexed when the lookup starts. Ids leave the in-memory set
   * only here, once their index rows are written, so a lookup sees every id committed
   * before it started; ids committed after it started are still in `unindexed` when the
   * batch is checked (one lookup per batch, started after the previous batch's check).
   */
  private lookup(items: readonly Pending[]): Promise<Set<string>> {
    for (const ids of this.indexedIds) for (const id of ids) this.unindexed.delete(id);
    this.indexedIds = [];
    const inMemory: string[] = [];
    const query = new Set<string>();
    const filter = this.filter;
    for (const p of items) {
      if (this.unindexed.has(p.event.id)) inMemory.push(p.event.id);
      // Not in the filter: never chained (the filter has every id of the topic). The
      // index is asked only about the ids the filter might hold.
      else if (!filter || filter.mightHave(p.event.id)) query.add(p.event.id);
    }
    const known = this.options.index.knownEventIds([...query]).then((found) => {
      for (const id of inMemory) found.add(id);
      return found;
    });
    known.catch(() => undefined);
    return known;
  }

  /**
   * Chain `batch` on top of `base`: drop the ids the topic (or the batch in flight) already
   * holds and repeats within the batch, seal personal data, hash the records and sign the
   * checkpoints that fall due. What would not fit in one transaction goes back to the
   * front of the queue. Commits nothing.
   */
  private async prepare(batch: Pending[], knownIds: Promise<Set<string>>, duePartitions: number[], base: ChainBase): Promise<Prepared> {
    const { fresh, duplicates, seen } = splitRepeats(batch, await knownIds, this.unindexed, base.freshIds);
    const events = await this.options.sealer.sealAll(
      fresh.map((p) => p.event),
      (i, problems) => this.refused(fresh[i], problems),
    );
    const signer = await this.options.signer.current();
    const { prepared, deferred } = chainBatch({
      topic: this.options.settings.topic,
      partitions: this.partitions,
      batch,
      fresh,
      duplicates,
      seen,
      events,
      signer,
      recordedAt: this.now().toISOString(),
      nowMs: Date.now(),
      duePartitions,
      base,
    });
    this.queue.unshift(...deferred);
    return prepared;
  }

  /**
   * An event whose producer-sealed `personal` failed its check is treated as forged: it
   * never enters the chain; audit's security event about it takes its place (and is
   * acknowledged with it, so it is neither retried nor stalls the chain).
   */
  private refused(pending: Pending, problems: string[]): RecordedEvent {
    const report = sealRefusalReport(pending.event, pending.delivery, problems);
    this.options.logger.error({ claimedType: report.claimedType, eventId: report.eventId, streamSequence: report.streamSequence, problems }, 'event with a forged sealed personal member refused');
    return eventForgeryDetected(systemEventContext('audit'), report) as unknown as RecordedEvent;
  }

  /** Commit a prepared batch as one Kafka transaction, then acknowledge and index it. */
  private async commit(prepared: Prepared): Promise<void> {
    const { settings, index } = this.options;
    const { written, checkpointValues, fresh, duplicates } = prepared;
    let metadata: RecordMetadata[] = [];
    if (written.length > 0 || checkpointValues.length > 0) {
      const txn = await this.producer!.transaction();
      try {
        const topicMessages = [];
        if (written.length > 0) {
          topicMessages.push({
            topic: settings.topic,
            messages: written.map((w) => ({ key: w.record.event.tenantId, value: w.value, partition: w.record.partition })),
          });
        }
        if (checkpointValues.length > 0) {
          topicMessages.push({ topic: settings.checkpointTopic, messages: checkpointValues.map((c) => ({ ...c, partition: 0 })) });
        }
        metadata = await txn.sendBatch({ topicMessages, acks: -1 });
        await txn.commit();
      } catch (error) {
        await txn.abort().catch(() => undefined);
        throw error;
      }
    }
    // Committed: this is now the chain.
    this.heads = prepared.heads;
    for (const [p, c] of prepared.counts) this.checkpoints.set(p, c);
    for (const p of fresh) p.resolve();
    for (const p of duplicates) p.resolve();
    if (fresh.length > 0) this.options.onCommitted?.(fresh.length, fresh[0].queuedAt);

    const rows = indexRowsOf(settings.topic, written, metadata);
    for (const r of rows) {
      this.unindexed.add(r.eventId);
      this.filter?.add(r.eventId);
      this.loadingFilter?.add(r.eventId);
    }
    if (this.filter?.full && !this.loadingFilter) void this.loadFilter();
    this.indexing = this.indexing
      .then(() => index.index(rows))
      .then(
        () => {
          this.indexedIds.push(rows.map((r) => r.eventId));
        },
        (error: unknown) => {
          // The topic has them; recovery indexes them from there.
          this.options.logger.warn({ err: describe(error) }, 'indexing committed records failed; re-reading them from the topic');
          this.needsRecovery = true;
        },
      );
  }

  /**
   * Build the id filter from the index, in the background; until it is complete, ids are
   * looked up in the index. Complete because at every instant each committed id is in
   * `unindexed` or in a committed index row: the filter takes `unindexed` when it is made,
   * then every page of the index, and every commit from then on.
   */
  private async loadFilter(): Promise<void> {
    const { eventIdCount, eachEventId } = this.options.index;
    if (!eventIdCount || !eachEventId) return;
    const generation = ++this.filterGeneration;
    try {
      const count = await eventIdCount.call(this.options.index);
      if (generation !== this.filterGeneration) return;
      const filter = new IdFilter(Math.max(MIN_FILTER_IDS, 2 * count));
      this.loadingFilter = filter;
      for (const id of this.unindexed) filter.add(id);
      await eachEventId.call(this.options.index, (ids) => {
        if (generation === this.filterGeneration) for (const id of ids) filter.add(id);
      });
      if (generation !== this.filterGeneration) return;
      this.filter = filter;
      this.loadingFilter = undefined;
      this.options.logger.info({ ids: filter.count, capacity: filter.capacity }, 'audit id filter loaded: fresh event ids are told from memory');
    } catch (error) {
      if (generation !== this.filterGeneration) return;
      this.loadingFilter = undefined;
      this.options.logger.warn({ err: describe(error) }, 'loading the audit id filter failed; ids are looked up in the index until the next recovery');
    }
  }

  private dropFilter(): void {
    this.filterGeneration++;
    this.filter = undefined;
    this.loadingFilter = undefined;
  }

  private warnOnce(msg: string): void {
    if (this.warned.has(msg)) return;
    this.warned.add(msg);
    this.options.logger.warn(msg);
  }

  private setState(state: WriterState, reason?: string): void {
    if (this.current.state !== state) this.current = { state, since: Date.now() };
    if (reason !== undefined) this.current.reason = reason;
    else delete this.current.reason;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}
