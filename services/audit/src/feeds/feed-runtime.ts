import { Inject, Injectable } from '@nestjs/common';
import { hostname } from 'node:os';
import { ident } from '@palisade/postgres';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { counter } from '@palisade/observability';
import { PalisadeError } from '@palisade/contracts';
import { AuditRuntime } from '../ingest/audit-runtime';
import { LeaseRepository } from '../ingest/lease.repository';
import { KeyEncryptionKey } from '../keys/kek';
import { hecEvent, octetFrame, syslogLine, type FeedItem } from './feed-format';
import { FeedWorker } from './feed-worker';
import { DEFAULT_BACKOFF, DEFAULT_BATCH_LIMITS } from './feed-policy';
import { FeedsRepository, type Feed, type HecSettings, type SyslogSettings } from './feeds.repository';
import { HecSender, SyslogSender } from './senders';

const RECONCILE_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Associated data of a wrapped HEC token or client key: it unwraps only for the feed (and use) it was stored with. */
export const tokenAad = (feedId: string) => `palisade-audit-feed-token/${feedId}`;
export const clientKeyAad = (feedId: string) => `palisade-audit-feed-client-key/${feedId}`;

/**
 * The SIEM feeds of this deployment. Exactly one instance delivers them: the holder of
 * a PostgreSQL advisory lock of its own (`palisade-audit-feeds/<topic>`, independent of
 * the writer's lease); it runs one FeedWorker per live, unpaused feed and reconciles
 * that set with the table every second, so feeds created, paused or deleted through
 * any instance are picked up, and a crashed reader restarts from its cursors.
 */
@Injectable()
export class FeedRuntime {
  readonly repository: FeedsRepository;
  private kek: KeyEncryptionKey | undefined;
  private readonly lease: LeaseRepository;
  private readonly workers = new Map<string, FeedWorker>();
  private leading = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Reconciliation and stopping a feed run one at a time. */
  private serial: Promise<unknown> = Promise.resolve();
  private readonly delivered: ReturnType<typeof counter>;
  private readonly failed: ReturnType<typeof counter>;

  constructor(
    @Inject(PLATFORM) private readonly platform: Platform,
    private readonly runtime: AuditRuntime,
  ) {
    this.repository = new FeedsRepository(ident(platform.options.config.PG_SCHEMA));
    this.lease = new LeaseRepository(`palisade-audit-feeds/${runtime.settings.topic}`);
    const metrics = platform.options.metrics;
    this.delivered = counter(metrics, 'palisade_audit_feed_items_total', 'Records and checkpoints a SIEM acknowledged', ['kind']);
    this.failed = counter(metrics, 'palisade_audit_feed_failures_total', 'Failed SIEM delivery attempts', ['kind', 'failure']);
    // Registered after AuditRuntime's (a dependency, constructed first): Kafka is connected by then.
    platform.afterConnect(() => this.start());
    platform.beforeClose(() => this.stop());
  }

  private get logger() {
    return this.platform.logger;
  }

  /** Wrap a feed's secret (HEC token, client key) for storage; it is never logged, returned or put into an event. */
  wrapSecret(secret: string, aad: string): Buffer {
    if (!this.kek) throw new PalisadeError('unavailable', 'the audit service is starting');
    return this.kek.wrap(Buffer.from(secret, 'utf8'), aad);
  }

  private async start(): Promise<void> {
    this.kek ??= KeyEncryptionKey.fromFile(this.runtime.config.AUDIT_KEK_FILE).kek;
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.leading) {
          if (await this.lease.tryAcquire(this.platform.dataSource!)) {
            this.leading = true;
            this.logger.info({ topic: this.runtime.settings.topic }, 'SIEM feeds lease taken: this instance delivers the feeds');
          }
        } else if (!(await this.lease.stillHeld())) {
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
    const wanted = new Map((await this.repository.list(this.runtime.db())).filter((f) => !f.paused).map((f) => [f.id, f]));
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
    const version = this.platform.options.version;
    const deps = {
      kafka: this.runtime.kafka,
      admin: this.runtime.admin,
      settings: this.runtime.settings,
      db: () => this.runtime.db(),
      repository: this.repository,
      logger: this.logger,
      limits: { ...DEFAULT_BATCH_LIMITS, maxEvents: this.runtime.config.AUDIT_FEED_BATCH_MAX },
      backoff: { ...DEFAULT_BACKOFF, maxMs: this.runtime.config.AUDIT_FEED_RETRY_MAX_MS },
      onDelivered: (count: number) => this.delivered.inc({ kind: feed.kind }, count),
      onFailed: (failure: string) => this.failed.inc({ kind: feed.kind, failure }),
    };
    if (feed.kind === 'splunk-hec') {
      const s = feed.settings as HecSettings;
      const token = this.kek!.unwrap(feed.wrappedToken!, tokenAad(feed.id)).toString('utf8');
      const options = { host: hostname(), index: s.index, sourcetype: s.sourcetype };
      const encode = (item: FeedItem) => JSON.stringify(hecEvent(item, feed.format, options, version));
      return new FeedWorker(feed, new HecSender(s.url, token, s.caPem, this.runtime.config.AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS), encode, (texts) => texts.join('\n'), deps);
    }
    const s = feed.settings as SyslogSettings;
    const header = { hostname: s.hostname ?? hostname(), appName: s.appName };
    const encode = (item: FeedItem) => octetFrame(syslogLine(item, feed.format, header, version));
    const clientKey = feed.wrappedClientKey ? this.kek!.unwrap(feed.wrappedClientKey, clientKeyAad(feed.id)).toString('utf8') : undefined;
    const client = s.clientCertPem && clientKey ? { cert: s.clientCertPem, key: clientKey } : undefined;
    return new FeedWorker(feed, new SyslogSender(s.host, s.port, s.caPem, client, this.runtime.config.AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS), encode, (texts) => texts.join(''), deps);
  }

  private async stopWorkers(): Promise<void> {
    const workers = [...this.workers.values()];
    this.workers.clear();
    await Promise.all(workers.map((w) => w.stop()));
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.stopWorkers();
    await this.lease.release();
  }
}
