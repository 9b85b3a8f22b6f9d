import { Inject, Injectable } from '@nestjs/common';
import { ident } from '@palisade/postgres';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import { DurableEventConsumer } from '@palisade/nats';
import { counter, histogram } from '@palisade/observability';
import { PLATFORM, type CheckResult, type Platform } from '@palisade/service-kit';
import { eventForgeryDetected, PalisadeError, systemEventContext } from '@palisade/contracts';
import type { EntityManager } from 'typeorm';
import { loadAuditConfig, type AuditConfig } from '../audit.config';
import { AUDIT_SERVICE_PRINCIPAL, AuditEvents } from '../audit.events';
import { KeyEncryptionKey } from '../keys/kek';
import { SigningKeys } from '../keys/signing-keys';
import { SigningKeysRepository } from '../keys/signing-keys.repository';
import { PersonalData } from '../subjects/personal-data';
import { SubjectKeysRepository } from '../subjects/subject-keys.repository';
import { topicSettingsOf, type TopicSettings } from './audit-topic';
import { ChainWriter } from './chain-writer';
import { LeaseRepository } from './lease.repository';
import { RecordsRepository } from './records.repository';
import { QueryRepository } from '../query/query.repository';

const LEASE_CHECK_MS = 1000;
const KAFKA_PROBE_MS = 2000;
/** Readiness fails when an event has waited longer than this for its Kafka commit. */
const STALL_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/** Readiness of the one runtime of this process, for the service definition's checks. */
export const auditReadiness = {
  runtime: undefined as AuditRuntime | undefined,
  kafka: async (): Promise<CheckResult> => auditReadiness.runtime?.kafkaCheck() ?? { ok: false, reason: 'audit runtime not started' },
  writer: async (): Promise<CheckResult> => auditReadiness.runtime?.writerCheck() ?? { ok: false, reason: 'audit runtime not started' },
};

/**
 * The audit service's moving parts, started once PostgreSQL and NATS are connected:
 * the Kafka client, the keys, the chain writer and the JetStream consumer that feeds
 * it, and the lease that makes exactly one instance the writer. Every other instance
 * is a standby that serves reads and takes over when the writer's lease goes.
 */
@Injectable()
export class AuditRuntime {
  readonly config: AuditConfig;
  readonly settings: TopicSettings;
  readonly records: RecordsRepository;
  readonly query: QueryRepository;
  private kafkaInstance: Kafka | undefined;
  private adminInstance: Admin | undefined;
  private signing: SigningKeys | undefined;
  private personalData: PersonalData | undefined;
  private writer: ChainWriter | undefined;
  private consumer: DurableEventConsumer | undefined;
  private readonly lease: LeaseRepository;
  private leading = false;
  private stopped = false;
  private leadership: Promise<void> | undefined;
  private kafkaState: CheckResult = { ok: false, reason: 'not probed yet' };
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(@Inject(PLATFORM) private readonly platform: Platform) {
    auditReadiness.runtime = this;
    this.config = loadAuditConfig();
    this.settings = topicSettingsOf(this.config);
    const schema = ident(platform.options.config.PG_SCHEMA);
    this.records = new RecordsRepository(`${schema}.audit_records`);
    this.query = new QueryRepository(`${schema}.audit_records`);
    this.lease = new LeaseRepository(`palisade-audit-writer/${this.settings.topic}`);
    platform.afterConnect(() => this.start());
    platform.beforeClose(() => this.stop());
  }

  get kafka(): Kafka {
    if (!this.kafkaInstance) throw new PalisadeError('unavailable', 'Kafka is not connected yet');
    return this.kafkaInstance;
  }

  get admin(): Admin {
    if (!this.adminInstance) throw new PalisadeError('unavailable', 'Kafka is not connected yet');
    return this.adminInstance;
  }

  get keys(): SigningKeys {
    if (!this.signing) throw new PalisadeError('unavailable', 'signing keys are not loaded yet');
    return this.signing;
  }

  get personal(): PersonalData {
    if (!this.personalData) throw new PalisadeError('unavailable', 'the audit service is starting');
    return this.personalData;
  }

  /** The connection for reads outside a transaction (repositories take it explicitly). */
  db(): EntityManager {
    const dataSource = this.platform.dataSource;
    if (!dataSource) throw new PalisadeError('unavailable', 'PostgreSQL is not connected yet');
    return dataSource.manager;
  }

  /** Rebuild the record index from the topic (the writer instance only). */
  async rebuildIndex(): Promise<number> {
    if (!this.leading || !this.writer) throw new PalisadeError('conflict', 'this instance is not the audit writer; the writer instance rebuilds the index (retry: requests reach it in turn)');
    return this.writer.rebuildIndex();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get logger() {
    return this.platform.logger;
  }

  private async start(): Promise<void> {
    const dataSource = this.platform.dataSource!;
    const schema = ident(this.platform.options.config.PG_SCHEMA);
    if (!this.signing) {
      const { kek, created } = KeyEncryptionKey.fromFile(this.config.AUDIT_KEK_FILE);
      if (created) this.logger.warn({ file: this.config.AUDIT_KEK_FILE }, 'created a new key-encryption key file (keep it safe: without it the stored keys are lost)');
      const signing = new SigningKeys(new SigningKeysRepository(schema), kek, () => dataSource);
      await signing.initialize();
      this.signing = signing;
      this.personalData = new PersonalData(new SubjectKeysRepository(`${schema}.audit_subject_keys`), kek, () => dataSource.manager, this.config.AUDIT_SUBJECT_KEY_CACHE_MAX);
    }
    if (!this.kafkaInstance) {
      this.kafkaInstance = kafkaClient({
        brokers: this.config.KAFKA_BROKERS,
        identity: this.platform.options.identity,
        clientId: `audit-${this.platform.instanceId}`,
        logger: this.logger,
        logLevel: 'warn',
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 5000 },
      });
      this.adminInstance = this.kafkaInstance.admin();
    }
    await this.adminInstance!.connect();
    this.probeKafka();
    this.probeTimer = setInterval(() => this.probeKafka(), KAFKA_PROBE_MS);
    this.probeTimer.unref();

    const metrics = this.platform.options.metrics;
    const committed = counter(metrics, 'palisade_audit_records_total', 'Events chained into the audit topic');
    const latency = histogram(metrics, 'palisade_audit_commit_seconds', 'From an event reaching the writer to its Kafka commit', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    const quarantined = counter(metrics, 'palisade_audit_index_quarantined_total', 'Chained records whose index row was quarantined (the index cannot hold them)', ['reason']);
    const auditEvents = new AuditEvents(this.platform);
    this.writer = new ChainWriter({
      kafka: this.kafkaInstance,
      admin: this.adminInstance!,
      settings: this.settings,
      transactionalId: `palisade-audit-writer-${this.settings.topic}`,
      db: () => dataSource.manager,
      records: this.records,
      sealer: this.personalData!,
      signer: this.signing!,
      logger: this.logger,
      batchMax: this.config.AUDIT_BATCH_MAX,
      onCommitted: (count, oldest) => {
        committed.inc(count);
        latency.observe((Date.now() - oldest) / 1000);
      },
      // Chained, but the index cannot hold it: alert (error log, metric, audited event), never
      // the record's content (it may carry what the index refused, or personal data).
      onQuarantined: (rows) => {
        for (const { row, reasons } of rows) {
          for (const reason of reasons) quarantined.inc({ reason });
          const where = { eventId: row.eventId, eventType: row.eventType, tenantId: row.tenantId, partition: row.partition, seq: row.seq, reasons };
          this.logger.error(where, 'audit record chained but its index row quarantined: the index cannot hold it (queries and exports leave it out)');
          auditEvents
            .record(AUDIT_SERVICE_PRINCIPAL, 'audit.index.quarantined', where)
            .catch((error: Error) => this.logger.warn({ err: error.message, eventId: row.eventId }, 'could not record the audit.index.quarantined event'));
        }
      },
    });
    const writer = this.writer;
    this.consumer = new DurableEventConsumer({
      nc: this.platform.nats!,
      service: 'audit',
      consumer: this.config.AUDIT_CONSUMER,
      filterSubjects: 'palisade.events.>',
      handler: (event) => writer.append(event),
      // A forged event never enters the chain; the report of it does, as audit's own
      // security event in the system tenant.
      onForgery: async (report) => {
        this.logger.error({ publisher: report.publisher, claimedType: report.claimedType, streamSequence: report.streamSequence }, 'forged event refused');
        await writer.append(eventForgeryDetected(systemEventContext('audit'), report));
      },
      // Never dead-letter a valid event because Kafka is away: keep retrying it.
      maxDeliver: 1_000_000,
      backoffMs: [1000, 2000, 5000],
      ackWaitMs: this.config.AUDIT_ACK_WAIT_MS,
      concurrency: this.config.AUDIT_BATCH_MAX * 2,
      batchSize: this.config.AUDIT_BATCH_MAX,
      deliverPolicy: this.config.AUDIT_DELIVER_POLICY,
      logger: this.logger,
      tracer: this.platform.options.tracer,
    });
    this.leadership ??= this.lead();
  }

  /** Take the lease when it is free; give everything up when it is lost. */
  private async lead(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.leading) {
          if (await this.lease.tryAcquire(this.platform.dataSource!)) {
            this.leading = true;
            this.logger.info({ topic: this.settings.topic }, 'audit writer lease taken: this instance writes the chains');
            this.writer!.activate();
            await this.consumer!.start();
          }
        } else if (!(await this.lease.stillHeld())) {
          this.logger.error({ topic: this.settings.topic }, 'audit writer lease lost: stopping to write');
          await this.resign('lease lost');
        }
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'audit writer lease check failed');
      }
      await sleep(LEASE_CHECK_MS);
    }
  }

  private async resign(reason: string): Promise<void> {
    this.leading = false;
    await this.writer?.deactivate(reason);
    await this.consumer?.stop();
    await this.lease.release();
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.probeTimer);
    await this.leadership;
    if (this.leading) await this.resign('shutting down');
    await this.adminInstance?.disconnect().catch(() => undefined);
  }

  private probeKafka(): void {
    if (this.probing || !this.adminInstance) return;
    this.probing = true;
    withTimeout(this.adminInstance.describeCluster(), 1500, 'Kafka')
      .then(
        () => (this.kafkaState = { ok: true }),
        (error: Error) => (this.kafkaState = { ok: false, reason: `Kafka unreachable (${error.message}); events wait in JetStream` }),
      )
      .finally(() => (this.probing = false));
  }

  kafkaCheck(): CheckResult {
    return this.kafkaState;
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
