import { eventForgeryDetected, PalisadeError, systemEventContext, type EventEnvelope, type ForgeryReport, type Principal } from '@palisade/contracts';
import { counter, histogram, type Logger, type Registry } from '@palisade/observability';
import type { CheckResult } from '@palisade/service-kit';
import { AUDIT_SERVICE_PRINCIPAL, type AuditEvents, type Transactions } from '../audit.events';
import type { SigningKeys } from '../keys/signing-keys';
import type { TopicSettings } from './audit-topic';
import type { AuditKafka } from './audit-kafka';
import type { Delivery } from './chain-batch';
import { ChainWriter, type PersonalDataSealer } from './chain-writer';
import type { QuarantinedRow } from './index-rows';
import type { LeaseRepository } from './lease.repository';
import { RecordIndex } from './record-index';
import type { RecordsRepository } from './records.repository';
import { setTimeout as sleep } from 'node:timers/promises';

const LEASE_CHECK_MS = 1000;
/** Readiness fails when an event has waited longer than this for its Kafka commit. */
const STALL_MS = 10_000;


/** The JetStream durable that feeds the writer (built by the module: NATS is the platform's). */
export interface IngestConsumer {
  /** The durable's name, as forgery reports give it. */
  readonly durable: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface IngestConsumerHandlers {
  handler: (event: EventEnvelope, delivery: Pick<Delivery, 'subject' | 'streamSequence'>) => Promise<void>;
  onForgery: (report: ForgeryReport) => Promise<void>;
}

export interface IngestDeps {
  settings: TopicSettings;
  batchMax: number;
  kafka: Pick<AuditKafka, 'connect' | 'client' | 'admin' | 'check' | 'close'>;
  signing: Pick<SigningKeys, 'initialize' | 'current'>;
  sealer: PersonalDataSealer;
  transactions: Transactions;
  records: Pick<RecordsRepository, 'knownEventIds' | 'append' | 'insert' | 'quarantine' | 'heads' | 'clear' | 'countEventIds' | 'eventIdsAfter' | 'quarantinedEventIds'>;
  /** The writer lease (`palisade-audit-writer/<topic>`). */
  lease: Pick<LeaseRepository, 'tryAcquire' | 'stillHeld' | 'release'>;
  newConsumer: (handlers: IngestConsumerHandlers) => IngestConsumer;
  events: Pick<AuditEvents, 'record'>;
  logger: Logger;
  metrics: Registry;
}

/** Readiness of the one ingest service of this process, for the service definition's checks (main.ts). */
export const auditReadiness = {
  service: undefined as IngestService | undefined,
  kafka: async (): Promise<CheckResult> => auditReadiness.service?.kafkaCheck() ?? { ok: false, reason: 'audit runtime not started' },
  writer: async (): Promise<CheckResult> => auditReadiness.service?.writerCheck() ?? { ok: false, reason: 'audit runtime not started' },
};

/**
 * Ingest: started once PostgreSQL and NATS are connected, it loads the keys, connects
 * Kafka, and competes for the writer lease; the holder runs the chain writer and the
 * JetStream consumer that feeds it. Every other instance is a standby that serves reads
 * and takes over when the writer's lease goes.
 */
export class IngestService {
  private writer: ChainWriter | undefined;
  private consumer: IngestConsumer | undefined;
  private keysLoaded = false;
  private leading = false;
  private stopped = false;
  private leadership: Promise<void> | undefined;

  constructor(private readonly deps: IngestDeps) {}

  /** Rebuild the record index from the topic (the writer instance only); the rebuild is audited. */
  async rebuildIndex(principal: Principal): Promise<{ indexed: number }> {
    if (!this.leading || !this.writer) throw new PalisadeError('conflict', 'this instance is not the audit writer; the writer instance rebuilds the index (retry: requests reach it in turn)');
    const indexed = await this.writer.rebuildIndex();
    await this.deps.events.record(principal, 'audit.index.rebuilt', { indexed });
    return { indexed };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<void> {
    const { deps } = this;
    if (!this.keysLoaded) {
      await deps.signing.initialize();
      this.keysLoaded = true;
    }
    await deps.kafka.connect();

    const committed = counter(deps.metrics, 'palisade_audit_records_total', 'Events chained into the audit topic');
    const latency = histogram(deps.metrics, 'palisade_audit_commit_seconds', 'From an event reaching the writer to its Kafka commit', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    const quarantined = counter(deps.metrics, 'palisade_audit_index_quarantined_total', 'Chained records whose index row was quarantined (the index cannot hold them)', ['reason']);
    // Chained, but the index cannot hold it: alert (error log, metric, audited event), never
    // the record's content (it may carry what the index refused, or personal data).
    const onQuarantined = (rows: readonly QuarantinedRow[]) => {
      for (const { row, reasons } of rows) {
        for (const reason of reasons) quarantined.inc({ reason });
        const where = { eventId: row.eventId, eventType: row.eventType, tenantId: row.tenantId, partition: row.partition, seq: row.seq, reasons };
        deps.logger.error(where, 'audit record chained but its index row quarantined: the index cannot hold it (queries and exports leave it out)');
        deps.events
          .record(AUDIT_SERVICE_PRINCIPAL, 'audit.index.quarantined', where)
          .catch((error: Error) => deps.logger.warn({ err: error.message, eventId: row.eventId }, 'could not record the audit.index.quarantined event'));
      }
    };
    const writer = new ChainWriter({
      kafka: deps.kafka.client,
      admin: deps.kafka.admin,
      settings: deps.settings,
      transactionalId: `palisade-audit-writer-${deps.settings.topic}`,
      index: new RecordIndex(deps.transactions, deps.records, deps.settings.topic, onQuarantined),
      sealer: deps.sealer,
      signer: deps.signing,
      logger: deps.logger,
      batchMax: deps.batchMax,
      onCommitted: (count, oldest) => {
        committed.inc(count);
        latency.observe((Date.now() - oldest) / 1000);
      },
    });
    this.writer = writer;
    this.consumer = deps.newConsumer({
      handler: (event, delivery) => writer.append(event, { subject: delivery.subject, streamSequence: delivery.streamSequence, consumer: this.consumer!.durable }),
      // A forged event never enters the chain; the report of it does, as audit's own
      // security event in the system tenant.
      onForgery: async (report) => {
        deps.logger.error({ publisher: report.publisher, claimedType: report.claimedType, streamSequence: report.streamSequence }, 'forged event refused');
        await writer.append(eventForgeryDetected(systemEventContext('audit'), report));
      },
    });
    this.leadership ??= this.lead();
  }

  /** Take the lease when it is free; give everything up when it is lost. */
  private async lead(): Promise<void> {
    const { lease, logger, settings } = this.deps;
    while (!this.stopped) {
      try {
        if (!this.leading) {
          if (await lease.tryAcquire()) {
            this.leading = true;
            logger.info({ topic: settings.topic }, 'audit writer lease taken: this instance writes the chains');
            this.writer!.activate();
            await this.consumer!.start();
          }
        } else if (!(await lease.stillHeld())) {
          logger.error({ topic: settings.topic }, 'audit writer lease lost: stopping to write');
          await this.resign('lease lost');
        }
      } catch (error) {
        logger.warn({ err: (error as Error).message }, 'audit writer lease check failed');
      }
      await sleep(LEASE_CHECK_MS);
    }
  }

  private async resign(reason: string): Promise<void> {
    this.leading = false;
    await this.writer?.deactivate(reason);
    await this.consumer?.stop();
    await this.deps.lease.release();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.leadership;
    if (this.leading) await this.resign('shutting down');
    await this.deps.kafka.close();
  }

  kafkaCheck(): CheckResult {
    return this.deps.kafka.check();
  }

  writerCheck(): CheckResult {
    if (!this.writer) return { ok: false, reason: 'starting' };
    if (!this.leading) return { ok: true };
    const status = this.writer.status();
    if (status.state === 'active' && status.oldestWaitMs < STALL_MS) return { ok: true };
    if (status.state === 'active') return { ok: false, reason: `no Kafka commit for ${Math.round(status.oldestWaitMs / 1000)} s; ${status.queued} event(s) waiting, the rest in JetStream` };
    if (status.state === 'recovering' && !status.reason) return { ok: false, reason: 'recovering the chain heads from the topic' };
    return { ok: false, reason: `audit writer ${status.state}: ${status.reason ?? 'unknown'}; ${status.queued} event(s) waiting, the rest in JetStream` };
  }
}
