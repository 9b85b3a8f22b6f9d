import { Module } from '@nestjs/common';
import { PalisadeError } from '@palisade/contracts';
import { DurableEventConsumer } from '@palisade/nats';
import { ident } from '@palisade/postgres';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { loadAuditConfig } from './audit.config';
import { AuditEvents, type Transactions } from './audit.events';
import { FeedDeliveryService } from './feeds/feed-delivery.service';
import { FeedsController } from './feeds/feeds.controller';
import { FeedsRepository } from './feeds/feeds.repository';
import { FeedsService } from './feeds/feeds.service';
import { AuditKafka } from './ingest/audit-kafka';
import { topicSettingsOf } from './ingest/audit-topic';
import { IndexController } from './ingest/index.controller';
import { auditReadiness, IngestService } from './ingest/ingest.service';
import { LeaseRepository } from './ingest/lease.repository';
import { RecordsRepository } from './ingest/records.repository';
import { KeyEncryptionKey } from './keys/kek';
import { KeysController } from './keys/keys.controller';
import { KeysService } from './keys/keys.service';
import { SigningKeys } from './keys/signing-keys';
import { SigningKeysRepository } from './keys/signing-keys.repository';
import { TransportKeys } from './keys/transport-keys';
import { TransportKeysRepository } from './keys/transport-keys.repository';
import { QueryController } from './query/query.controller';
import { QueryRepository } from './query/query.repository';
import { QueryService } from './query/query.service';
import { PersonalData } from './subjects/personal-data';
import { SealPersonalRpc } from './subjects/seal-personal.rpc';
import { SubjectKeysRepository } from './subjects/subject-keys.repository';
import { SubjectsController } from './subjects/subjects.controller';
import { SubjectsService } from './subjects/subjects.service';
import { TransportOpener } from './subjects/transport-opener';
import { VerifyController } from './verify/verify.controller';
import { VerifyService } from './verify/verify.service';

/** What the controllers are given: one service each. */
interface AuditServices {
  ingest: IngestService;
  keys: KeysService;
  query: QueryService;
  verify: VerifyService;
  subjects: SubjectsService;
  feeds: FeedsService;
}

const AUDIT_SERVICES = Symbol('AUDIT_SERVICES');

function connected<T>(value: T | undefined, what: string): T {
  if (!value) throw new PalisadeError('unavailable', `the audit service is starting (${what} not connected yet)`);
  return value;
}

/**
 * The wiring, and the only place that knows the platform: builds the repositories, the
 * Kafka client, the keys and the services, hands each only what it uses, and starts and
 * stops the background work (ingest, SIEM feed delivery) with the platform.
 */
function wire(platform: Platform): AuditServices {
  const config = loadAuditConfig();
  const settings = topicSettingsOf(config);
  const schema = ident(platform.options.config.PG_SCHEMA);
  const { logger } = platform;
  const { metrics } = platform.options;
  const store = () => connected(platform.eventStore, 'PostgreSQL');
  const transactions: Transactions = { inTransaction: (work) => store().inTransaction(work) };
  const dataSource = () => connected(platform.dataSource, 'PostgreSQL');
  const events = new AuditEvents(store, platform.eventContext);

  const { kek, created } = KeyEncryptionKey.fromFile(config.AUDIT_KEK_FILE);
  if (created) logger.warn({ file: config.AUDIT_KEK_FILE }, 'created a new key-encryption key file (keep it safe: without it the stored keys are lost)');
  const kafka = new AuditKafka({ brokers: config.KAFKA_BROKERS, identity: platform.options.identity, clientId: `audit-${platform.instanceId}`, logger });
  const records = new RecordsRepository(`${schema}.audit_records`);
  const index = new QueryRepository(`${schema}.audit_records`);
  const signing = new SigningKeys(new SigningKeysRepository(schema), kek, transactions, config.AUDIT_CHECKPOINT_ALGORITHM);
  // Producers seal personal data to the transport keys themselves (libs/nats TransportPersonalSealer); ingest opens it.
  const transportKeys = new TransportKeys(new TransportKeysRepository(schema), kek, transactions, {
    rotationMs: config.AUDIT_TRANSPORT_KEY_ROTATION_MS,
    graceMs: config.AUDIT_TRANSPORT_KEY_GRACE_MS,
  });
  const personal = new PersonalData(new SubjectKeysRepository(`${schema}.audit_subject_keys`), kek, transactions, config.AUDIT_SUBJECT_KEY_CACHE_MAX, new TransportOpener(transportKeys));
  let keyTimer: NodeJS.Timeout | undefined;
  const maintainTransportKeys = async () => {
    const done = await transportKeys.maintain();
    if (done.rotated !== null || done.destroyed.length > 0) logger.info({ current: done.current, retired: done.rotated, destroyed: done.destroyed }, 'audit transport keys rotated or destroyed');
  };
  // before the RPC server answers: a first key exists once the service is connected
  platform.afterConnect(async () => {
    await maintainTransportKeys();
    keyTimer ??= setInterval(() => maintainTransportKeys().catch((error: Error) => logger.warn({ reason: error.message }, 'audit transport key maintenance failed (retried)')), config.AUDIT_TRANSPORT_KEY_CHECK_MS);
    keyTimer.unref();
  });
  platform.beforeClose(async () => clearInterval(keyTimer));
  // Producers learn the transport keys here, and have personal data sealed here while they have none; every instance answers.
  new SealPersonalRpc(platform, personal, transportKeys);

  const ingest = new IngestService({
    settings,
    batchMax: config.AUDIT_BATCH_MAX,
    kafka,
    signing,
    sealer: personal,
    transactions,
    records,
    lease: new LeaseRepository(`palisade-audit-writer/${settings.topic}`, dataSource),
    newConsumer: (handlers) =>
      new DurableEventConsumer({
        nc: connected(platform.nats, 'NATS'),
        service: 'audit',
        consumer: config.AUDIT_CONSUMER,
        filterSubjects: 'palisade.events.>',
        ...handlers,
        // Never dead-letter a valid event because Kafka is away: keep retrying it.
        maxDeliver: 1_000_000,
        backoffMs: [1000, 2000, 5000],
        ackWaitMs: config.AUDIT_ACK_WAIT_MS,
        concurrency: config.AUDIT_BATCH_MAX * 2,
        batchSize: config.AUDIT_BATCH_MAX,
        deliverPolicy: config.AUDIT_DELIVER_POLICY,
        logger,
        tracer: platform.options.tracer,
      }),
    events,
    logger,
    metrics,
  });
  auditReadiness.service = ingest;
  platform.afterConnect(() => ingest.start());
  platform.beforeClose(() => ingest.stop());

  const feedsRepository = new FeedsRepository(schema);
  const delivery = new FeedDeliveryService({
    config,
    settings,
    kek,
    kafka,
    transactions,
    repository: feedsRepository,
    lease: new LeaseRepository(`palisade-audit-feeds/${settings.topic}`, dataSource),
    logger,
    metrics,
    version: platform.options.version,
  });
  // After ingest's: Kafka is connected by then.
  platform.afterConnect(() => delivery.start());
  platform.beforeClose(() => delivery.stop());

  return {
    ingest,
    keys: new KeysService(signing, events),
    query: new QueryService(transactions, index, personal, events, settings.topic),
    verify: new VerifyService(kafka, transactions, records, signing, settings),
    subjects: new SubjectsService(transactions, index, personal, events, settings.topic),
    feeds: new FeedsService(transactions, feedsRepository, events, delivery, kafka, settings, config.AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS),
  };
}

const serviceOf = <K extends keyof AuditServices>(token: abstract new (...args: never[]) => AuditServices[K], key: K) => ({
  provide: token,
  useFactory: (services: AuditServices) => services[key],
  inject: [AUDIT_SERVICES],
});

/**
 * The audit service: every platform event into the hash-chained Kafka topic
 * (ingest/), signed checkpoints and their keys (keys/), per-subject encryption of
 * personal data and erasure (subjects/), verification (verify/), query and export
 * (query/), SIEM feeds (feeds/).
 */
@Module({
  controllers: [KeysController, VerifyController, QueryController, SubjectsController, IndexController, FeedsController],
  providers: [
    { provide: AUDIT_SERVICES, useFactory: (platform: Platform) => wire(platform), inject: [PLATFORM] },
    serviceOf(IngestService, 'ingest'),
    serviceOf(KeysService, 'keys'),
    serviceOf(QueryService, 'query'),
    serviceOf(VerifyService, 'verify'),
    serviceOf(SubjectsService, 'subjects'),
    serviceOf(FeedsService, 'feeds'),
  ],
})
export class AuditModule {}
