import { hostname } from 'node:os';
import { counter, type Logger, type Registry } from '@palisade/observability';
import type { AuditConfig } from '../audit.config';
import type { Transactions } from '../audit.events';
import type { AuditKafka } from '../ingest/audit-kafka';
import type { TopicSettings } from '../ingest/audit-topic';
import type { LeaseRepository } from '../ingest/lease.repository';
import type { KeyEncryptionKey } from '../keys/kek';
import { hecEvent, octetFrame, syslogLine, type FeedItem } from './feed-format';
import { FeedWorker } from './feed-worker';
import { DEFAULT_BACKOFF, DEFAULT_BATCH_LIMITS } from './feed-policy';
import { clientKeyAad, tokenAad } from './feed-secrets';
import type { Feed, FeedsRepository, HecSettings, SyslogSettings } from './feeds.repository';
import { HecSender, SyslogSender } from './senders';
import { setTimeout as sleep } from 'node:timers/promises';

const RECONCILE_MS = 1000;

export interface FeedDeliveryDeps {
  config: Pick<AuditConfig, 'AUDIT_FEED_BATCH_MAX' | 'AUDIT_FEED_RETRY_MAX_MS' | 'AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS'>;
  settings: TopicSettings;
  kek: KeyEncryptionKey;
  kafka: Pick<AuditKafka, 'client' | 'admin'>;
  transactions: Transactions;
  repository: Pick<FeedsRepository, 'list' | 'cursorsOf' | 'advance' | 'recordError'>;
  /** The feeds' lease (`palisade-audit-feeds/<topic>`), independent of the writer's. */
  lease: Pick<LeaseRepository, 'tryAcquire' | 'stillHeld' | 'release'>;
  logger: Logger;
  metrics: Registry;
  /** The service's version (HEC and syslog name it). */
  version: string;
}

/**
 * The SIEM feeds of this deployment. Exactly one instance delivers them: the holder of
 * a PostgreSQL advisory lock of its own (`palisade-audit-feeds/<topic>`, independent of
 * the writer's lease); it runs one FeedWorker per live, unpaused feed and reconciles
 * that set with the table every second, so feeds created, paused or deleted through
 * any instance are picked up, and a crashed reader restarts from its cursors.
 */
export class FeedDeliveryService {
  private readonly workers = new Map<string, FeedWorker>();
  private leading = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Reconciliation and stopping a feed run one at a time. */
  private serial: Promise<unknown> = Promise.resolve();
  private readonly delivered: ReturnType<typeof counter>;
  private readonly failed: ReturnType<typeof counter>;

  constructor(private readonly deps: FeedDeliveryDeps) {
    this.delivered = counter(deps.metrics, 'palisade_audit_feed_items_total', 'Records and checkpoints a SIEM acknowledged', ['kind']);
    this.failed = counter(deps.metrics, 'palisade_audit_feed_failures_total', 'Failed SIEM delivery attempts', ['kind', 'failure']);
  }

  private get logger() {
    return this.deps.logger;
  }

  /** Wrap a feed's secret (HEC token, client key) for storage; it is never logged, returned or put into an event. */
  wrapSecret(secret: string, aad: string): Buffer {
    return this.deps.kek.wrap(Buffer.from(secret, 'utf8'), aad);
  }

  /** Start competing for the feeds' lease (once Kafka is connected). */
  async start(): Promise<void> {
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.leading) {
          if (await this.deps.lease.tryAcquire()) {
            this.leading = true;
            this.logger.info({ topic: this.deps.settings.topic }, 'SIEM feeds lease taken: this instance delivers the feeds');
          }
        } else if (!(await this.deps.lease.stillHeld())) {
          this.logger.error('SIEM feeds lease lost: stopping every feed');
          await this.stopWorkers();
          this.leading = false;
        }
        if (this.leading) await this.exclusive(() => this.reconcile());
      } catch (error) {
        this.logger.warn({ err: (error as Error).message }, 'SIEM feeds check failed');
      }
      await sleep(RECONCILE_MS);
    }
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.serial.then(work, work);
    this.serial = run.catch(() => undefined);
    return run;
  }

  /**
   * Stop delivering a feed now, when this instance delivers it (after its deletion or
   * pause committed): the API's answer then means no more deliveries. Another instance
   * stops it at its next reconciliation (within a second).
   */
  release(feedId: string): Promise<void> {
    return this.exclusive(async () => {
      const worker = this.workers.get(feedId);
      if (!worker) return;
      this.workers.delete(feedId);
      await worker.stop();
    });
  }

  private async reconcile(): Promise<void> {
    const wanted = new Map((await this.deps.transactions.inTransaction((tx) => this.deps.repository.list(tx))).filter((f) => !f.paused).map((f) => [f.id, f]));
    for (const [id, worker] of this.workers) {
      if (!wanted.has(id) || worker.crashed) {
        this.workers.delete(id);
        await worker.stop();
      }
    }
    for (const [id, feed] of wanted) {
      if (this.workers.has(id) || this.stopped) continue;
      let worker: FeedWorker | undefined;
      try {
        // A feed that cannot start (Kafka away, a secret the KEK cannot open) does not hold up the others.
        worker = this.workerFor(feed);
        await worker.start();
        this.workers.set(id, worker);
        this.logger.info({ feedId: id, tenantId: feed.tenantId, kind: feed.kind, format: feed.format }, 'SIEM feed delivering');
      } catch (error) {
        await worker?.stop();
        this.logger.warn({ feedId: id, err: (error as Error).message }, 'SIEM feed could not start; retrying');
      }
    }
  }

  private workerFor(feed: Feed): FeedWorker {
    const { version, config, kek } = this.deps;
    const deps = {
      kafka: this.deps.kafka.client,
      admin: this.deps.kafka.admin,
      settings: this.deps.settings,
      transactions: this.deps.transactions,
      repository: this.deps.repository,
      logger: this.logger,
      limits: { ...DEFAULT_BATCH_LIMITS, maxEvents: config.AUDIT_FEED_BATCH_MAX },
      backoff: { ...DEFAULT_BACKOFF, maxMs: config.AUDIT_FEED_RETRY_MAX_MS },
      onDelivered: (count: number) => this.delivered.inc({ kind: feed.kind }, count),
      onFailed: (failure: string) => this.failed.inc({ kind: feed.kind, failure }),
    };
    if (feed.kind === 'splunk-hec') {
      const s = feed.settings as HecSettings;
      const token = kek.unwrap(feed.wrappedToken!, tokenAad(feed.id)).toString('utf8');
      const options = { host: hostname(), index: s.index, sourcetype: s.sourcetype };
      const encode = (item: FeedItem) => JSON.stringify(hecEvent(item, feed.format, options, version));
      return new FeedWorker(feed, new HecSender(s.url, token, s.caPem, config.AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS), encode, (texts) => texts.join('\n'), deps);
    }
    const s = feed.settings as SyslogSettings;
    const header = { hostname: s.hostname ?? hostname(), appName: s.appName };
    const encode = (item: FeedItem) => octetFrame(syslogLine(item, feed.format, header, version));
    const clientKey = feed.wrappedClientKey ? kek.unwrap(feed.wrappedClientKey, clientKeyAad(feed.id)).toString('utf8') : undefined;
    const client = s.clientCertPem && clientKey ? { cert: s.clientCertPem, key: clientKey } : undefined;
    return new FeedWorker(feed, new SyslogSender(s.host, s.port, s.caPem, client, config.AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS), encode, (texts) => texts.join(''), deps);
  }

  private async stopWorkers(): Promise<void> {
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(workers.map((w) => w.stop()));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.stopWorkers();
    await this.deps.lease.release();
  }
}
