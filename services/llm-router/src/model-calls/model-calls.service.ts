import type { EventEnvelope, EventFactoryContext, Personal, PersonalSealer, Principal } from '@palisade/contracts';
import { envelopeOf, streamName, type EventStore, type Transaction } from '@palisade/eventsourcing';
import { modelCallDecider, type ModelCallCommand } from './model-calls.decider';
import type { ModelCallRecorded, UsageRecorded } from './model-calls.events';

export interface ModelCallsOptions {
  /** Most events per commit. */
  maxBatch: number;
  /** Most commits under way at once (default 4): under load each commit waits its turn on a busy event loop, so one at a time fell behind. */
  maxConcurrent?: number;
}

/** The event store; one that appends to many new streams in one statement (PgEventStore) commits a group with one INSERT. */
export interface ModelCallsStore extends EventStore {
  appendToNewStreams?(tx: Transaction, appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void>;
  /** The same as one statement in a transaction of its own: one round trip instead of three. */
  commitToNewStreams?(appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void>;
}

interface Pending {
  streamId: string;
  envelope: EventEnvelope;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Appends the audit event of each model call (stream `model-call-<requestId>`, one event,
 * decided by `modelCallDecider` on a new stream) and the outbox carries it to the audit
 * chain. Model calls are the hottest write of the platform, so their events are
 * group-committed, like credential's lease streams, without a linger: an event commits at
 * once (with the others of the same turn of the event loop) while fewer than
 * `maxConcurrent` commits run; otherwise it waits for one to end, and everything queued
 * meanwhile shares the next transaction (each stream still appended at expected version 0,
 * so a request id is recorded once). The call path waits for the commit before the answer's
 * end reaches the caller, so an answer the caller has was recorded.
 * The prompts and answers are sealed by the audit service before they are stored.
 */
export class ModelCallsService {
  private queue: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly store: ModelCallsStore,
    private readonly eventContext: EventFactoryContext,
    private readonly options: ModelCallsOptions = { maxBatch: 128 },
    /** Seals the texts of a whole group in one request before its transaction (no database connection held while audit answers; texts it cannot seal are withheld). */
    private readonly sealer?: PersonalSealer,
    /** Told how many records were kept without their texts because they could not be sealed. */
    private readonly onTextsWithheld: (records: number, error: unknown) => void = () => undefined,
  ) {}

  record(principal: Principal, call: ModelCallRecorded, texts: { prompt: unknown; response?: unknown } | undefined, now: Date): Promise<void> {
    const subjectId = principal.actingFor ?? principal.id;
    const personal: Personal | undefined = texts ? { subjectId, data: texts.response === undefined ? { prompt: texts.prompt } : { prompt: texts.prompt, response: texts.response } } : undefined;
    return this.enqueue(principal, streamName('model-call', call.requestId), { type: 'record', data: { call, ...(personal ? { personal } : {}) } }, now);
  }

  /** The hold's settlement as an event, for billing's metering consumer (exactly once, even if the settlement request is lost). */
  recordUsage(principal: Principal, usage: UsageRecorded, now: Date): Promise<void> {
    return this.enqueue(principal, streamName('usage', usage.requestId), { type: 'record-usage', data: usage }, now);
  }

  private enqueue(principal: Principal, streamId: string, command: Omit<ModelCallCommand, 'metadata'>, now: Date): Promise<void> {
    const metadata = { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now };
    const [event] = modelCallDecider.decide({ ...command, metadata } as ModelCallCommand, modelCallDecider.initialState());
    const envelope = envelopeOf(this.eventContext, metadata, event);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ streamId, envelope, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.startCommits();
      // a free slot: commit now, with what this turn of the event loop adds; none: a commit ending takes the queue
      else if (this.running.size < this.maxConcurrent) this.scheduled ??= setImmediate(() => this.startCommits());
    });
  }

  private get maxConcurrent(): number {
    return this.options.maxConcurrent ?? 4;
  }

  /** Commits what is queued now, and waits for every commit under way (also on shutdown). */
  async flush(): Promise<void> {
    this.startCommits();
    while (this.running.size > 0) {
      await Promise.all(this.running);
      this.startCommits();
    }
  }

  /** Starts a commit per group queued, up to `maxConcurrent` at once; a commit that ends starts the next. */
  private startCommits(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.queue.length > 0 && this.running.size < this.maxConcurrent) {
      const commit: Promise<void> = this.commit(this.queue.splice(0, this.options.maxBatch)).finally(() => {
        this.running.delete(commit);
        if (this.queue.length > 0) this.startCommits();
      });
      this.running.add(commit);
    }
  }

  /** One group in one transaction (each stream still new); the group's callers learn how it went. Never rejects. */
  private async commit(group: Pending[]): Promise<void> {
    try {
      const stored = await this.sealed(group.map((p) => p.envelope));
      const appends = group.map((p, i) => ({ streamId: p.streamId, event: stored[i] }));
      if (this.store.commitToNewStreams) await this.store.commitToNewStreams(appends);
      else
        await this.store.inTransaction(async (tx) => {
          if (this.store.appendToNewStreams) await this.store.appendToNewStreams(tx, appends);
          else for (const a of appends) await this.store.appendToStream(tx, a.streamId, [a.event], 0);
        });
      for (const p of group) p.resolve();
    } catch (error) {
      for (const p of group) p.reject(error);
    }
  }

  /**
   * The group with its texts sealed. When they cannot be (the audit service is away), the
   * records are kept without them, as under zero retention: the texts are never stored in
   * plaintext, and neither the record of the call nor the usage events sharing the
   * group (billing's metering) are lost.
   */
  private async sealed(envelopes: EventEnvelope[]): Promise<EventEnvelope[]> {
    if (!this.sealer || !envelopes.some((e) => e.personal)) return envelopes;
    try {
      return await this.sealer.seal(envelopes);
    } catch (error) {
      this.onTextsWithheld(envelopes.filter((e) => e.personal).length, error);
      return envelopes.map((e) => {
        if (!e.personal) return e;
        const { personal: _withheld, ...kept } = e;
        return kept;
      });
    }
  }
}
