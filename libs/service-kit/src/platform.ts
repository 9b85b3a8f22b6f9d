import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { v7 as uuidv7 } from 'uuid';
import type { Tracer } from '@opentelemetry/api';
import type { MigrationInterface, DataSource } from 'typeorm';
import type { AppendResult, EventStore, ExpectedVersion, ReadStreamResult, Transaction } from '@palisade/eventsourcing';
import {
  buildEvent,
  PalisadeError,
  RPC_PREFIX,
  systemEventContext,
  SYSTEM_TENANT,
  type EventEnvelope,
  type EventFactoryContext,
  type PersonalSealer,
  type ServiceName,
} from '@palisade/contracts';
import { RevocationList } from '@palisade/auth-verifier';
import { connectNats, JetStreamEventPublisher, NatsPersonalSealer, serveRpc, TransportPersonalSealer, type NatsConnection, type RpcHandler, type RpcServer } from '@palisade/nats';
import { counter, gauge, type Logger, type Registry } from '@palisade/observability';
import type { ServiceIdentity } from '@palisade/pki';
import {
  createDataSource,
  EVENT_STORE_MIGRATIONS,
  OutboxRelay,
  PgEventStore,
  type FollowerStatus,
  type PgConnectionOptions,
} from '@palisade/postgres';
import type { ServiceConfig } from './config';
import { lifecycleStarted } from './lifecycle';
import { RevocationFeed } from './revocation-feed';
import { followerCheck, type CheckResult } from './health';
import { setTimeout as sleep } from 'node:timers/promises';

export type MigrationFactory = (schema: string, appRole: string) => new () => MigrationInterface;


export type ReadinessCheck = (platform: Platform) => Promise<CheckResult>;

export interface PlatformOptions {
  service: ServiceName;
  version: string;
  config: ServiceConfig;
  logger: Logger;
  metrics: Registry;
  tracer: Tracer;
  identity: ServiceIdentity;
  migrations: readonly MigrationFactory[];
  /** A cluster worker's: the primary runs the migrations, this resolves once it has (the platform waits for it instead). */
  migratedElsewhere?: Promise<void>;
  readiness: Readonly<Record<string, ReadinessCheck>>;
}


/** `promise`, or a rejection naming `what` if it does not settle within `ms` (readiness probes). */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/**
 * A service's connections to its infrastructure: PostgreSQL (migrated, then used as
 * the least-privilege role), the event store, NATS, and the outbox relay that moves
 * committed events to JetStream. Dependencies that are down are retried with backoff
 * for as long as it takes; readiness says which one is missing and why.
 */
export class Platform {
  readonly instanceId = uuidv7();
  readonly eventContext: EventFactoryContext;
  /** Revoked tokens, sessions and principals, fed by the auth service's revocation events. */
  readonly revocations = new RevocationList();
  /**
   * Seals `personal` for the audit service before events are stored (issue 10): the
   * event store uses it on every append, and so must any path that stores or publishes
   * events without it. Asks nothing for events without personal data. By default
   * (PERSONAL_SEALING=local) it seals locally to audit's transport key (libs/nats
   * TransportPersonalSealer: no round trip per append), asking audit over NATS only
   * while it has no key; PERSONAL_SEALING=rpc has audit seal every append.
   */
  readonly personalSealer: PersonalSealer;
  dataSource: DataSource | undefined;
  eventStore: PgEventStore | undefined;
  nats: NatsConnection | undefined;
  relay: OutboxRelay | undefined;
  /** Follows the auth service's revocation events into `revocations` (started once NATS is connected). */
  revocationFeed: RevocationFeed | undefined;
  private connected = false;
  private readonly connectHooks: Array<(platform: Platform) => Promise<void>> = [];
  private readonly closeHooks: Array<() => Promise<void>> = [];
  private closing = false;
  private readonly waiting = new Map<string, string>();
  private readonly followers = new Map<string, () => FollowerStatus>();

  constructor(readonly options: PlatformOptions) {
    this.eventContext = systemEventContext(options.service);
    const sealedByAudit = new NatsPersonalSealer({ nats: () => this.nats, timeoutMs: options.config.PERSONAL_SEALING_TIMEOUT_MS });
    this.personalSealer =
      options.config.PERSONAL_SEALING === 'rpc'
        ? sealedByAudit
        : new TransportPersonalSealer({ nats: () => this.nats, timeoutMs: options.config.PERSONAL_SEALING_TIMEOUT_MS, fallback: sealedByAudit, logger: options.logger });
    const published = counter(options.metrics, 'palisade_outbox_published_events_total', 'Events relayed from the event store to JetStream');
    const lag = gauge(options.metrics, 'palisade_outbox_relay_lag_seconds', 'Age of the newest relayed event when JetStream acknowledged it');
    this.onPublished = (count, oldestMs) => {
      published.inc(count);
      lag.set((Date.now() - oldestMs) / 1000);
    };
  }

  private readonly onPublished: (count: number, oldestMs: number) => void;

  get logger(): Logger {
    return this.options.logger;
  }

  isConnected(): boolean {
    return this.connected;
  }

  connection(user: 'app' | 'owner'): PgConnectionOptions {
    return pgConnection(this.options.service, this.options.config, user);
  }

  /** Connect everything, retrying each step until it succeeds or the platform closes. */
  async connect(): Promise<void> {
    if (this.options.migratedElsewhere) {
      this.waiting.set('postgres', 'waiting for the primary process to migrate');
      await this.options.migratedElsewhere;
    } else await this.step('postgres', () => this.migrate());
    await this.step('postgres', async () => {
      const ds = createDataSource(this.connection('app'));
      await ds.initialize();
      this.dataSource = ds;
      this.eventStore = new PgEventStore(ds, this.options.config.PG_SCHEMA, this.personalSealer);
    });
    await this.step('nats', async () => {
      this.nats = await connectNats({
        servers: this.options.config.NATS_URL,
        identity: this.options.identity,
        name: `${this.options.service}-${this.instanceId}`,
        logger: this.logger,
      });
    });
    this.revocationFeed = new RevocationFeed({ nc: this.nats!, service: this.options.service, revocations: this.revocations, logger: this.logger });
    await this.step('revocations', () => this.revocationFeed!.start());
    const publisher = new JetStreamEventPublisher(this.nats!);
    this.relay = new OutboxRelay({
      connection: this.connection('app'),
      publisher,
      logger: this.logger,
      onPublished: (events) => this.onPublished(events.length, Date.parse(events[0].occurredAt)),
    });
    this.relay.start();
    for (const hook of this.connectHooks) await this.step('startup', () => hook(this));
    await this.step('postgres', () => this.announceStart());
    this.connected = true;
    this.logger.info({ instanceId: this.instanceId }, 'connected to every dependency');
  }

  private async migrate(): Promise<void> {
    await runMigrations(this.options.service, this.options.config, this.logger, this.options.migrations);
  }

  private async announceStart(): Promise<void> {
    const store = this.eventStore!;
    const event = buildEvent(this.eventContext, {
      ...lifecycleStarted(this.options.service, { instanceId: this.instanceId, version: this.options.version, host: hostname() }),
      tenantId: SYSTEM_TENANT,
      actor: { type: 'service', id: this.options.service },
    });
    await store.inTransaction((tx) => store.appendToStream(tx, `lifecycle-${this.instanceId}`, [event], 0));
  }

  /** Run one connection step until it succeeds, logging each failure with its reason. */
  private async step(dependency: string, attempt: () => Promise<void>): Promise<void> {
    await retrying(attempt, {
      maxDelayMs: this.options.config.DEPENDENCY_RETRY_MAX_MS,
      stopped: () => this.closing,
      failed: (reason, retryInMs) => {
        this.waiting.set(dependency, reason);
        this.logger.error({ dependency, reason, retryInMs }, `${dependency} unavailable; retrying`);
      },
    });
    this.waiting.delete(dependency);
  }

  /**
   * Work to do once PostgreSQL and NATS are connected, before the service reports
   * ready: start durable consumers, load caches. Retried like a connection step.
   * Register from a provider's constructor or onModuleInit.
   */
  afterConnect(hook: (platform: Platform) => Promise<void>): void {
    this.connectHooks.push(hook);
  }

  /**
   * Answer NATS requests to this service (`palisade.rpc.<service>.<method>` → handler)
   * with `serveRpc` on the platform's mTLS connection: subscribed once NATS is connected,
   * before the service reports ready; drained (requests in progress answered) when it
   * stops. Who may ask each method is deploy/local/nats-requests.txt; a handler learns
   * who asked from its `caller` argument. Register from a provider's constructor.
   */
  answerRequests(handlers: Readonly<Record<string, RpcHandler>>): void {
    const own = `${RPC_PREFIX}.${this.options.service}.`;
    const foreign = Object.keys(handlers).filter((subject) => !subject.startsWith(own) || !/^[a-z0-9][a-z0-9-]*$/.test(subject.slice(own.length)));
    if (foreign.length > 0) throw new Error(`${this.options.service} answers only ${own}<method>, not ${foreign.join(', ')}`);
    let server: RpcServer | undefined;
    this.afterConnect(async (p) => {
      server ??= serveRpc(p.nats!, { service: p.options.service, handlers, trust: p.options.identity, tracer: p.options.tracer, logger: p.logger });
      await p.nats!.flush(); // the subscriptions are registered with NATS before the service reports ready
    });
    this.beforeClose(async () => {
      await server?.stop();
      server = undefined;
    });
  }

  /** Work to do when the service stops (drain consumers), before NATS and PostgreSQL close. */
  beforeClose(hook: () => Promise<void>): void {
    this.closeHooks.push(hook);
  }

  /**
   * A reader of the event store (an event tail) whose lag readiness reports: more than
   * EVENT_LAG_MAX_MS behind makes the service not ready, naming it and why.
   */
  follow(name: string, status: () => FollowerStatus): void {
    this.followers.set(name, status);
  }

  /** The longest a reader of the event store may stay behind before the service is not ready. */
  get maxEventLagMs(): number {
    return this.options.config.EVENT_LAG_MAX_MS;
  }

  /** Each dependency's state, for GET /health/ready. */
  async readiness(): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
    const checks: Record<string, CheckResult> = {};
    checks.postgres = this.dataSource?.isInitialized
      ? await withTimeout(this.dataSource.query('SELECT 1'), 1000, 'postgres').then(
          () => ({ ok: true }),
          (e: Error) => ({ ok: false, reason: e.message }),
        )
      : { ok: false, reason: this.waiting.get('postgres') ?? 'not connected yet' };
    checks.nats =
      this.nats && !this.nats.isClosed()
        ? await withTimeout(this.nats.flush(), 1000, 'nats').then(
            () => ({ ok: true }),
            (e: Error) => ({ ok: false, reason: e.message }),
          )
        : { ok: false, reason: this.waiting.get('nats') ?? 'not connected yet' };
    const now = Date.now();
    const relay = this.relay?.status();
    checks.outbox = relay ? followerCheck(relay, this.maxEventLagMs, now) : { ok: false, reason: 'relay not started' };
    for (const [name, status] of this.followers) checks[name] = followerCheck(status(), this.maxEventLagMs, now);
    if (!this.connected) checks.startup = { ok: false, reason: [...this.waiting.values()][0] ?? 'connecting' };
    for (const [name, check] of Object.entries(this.options.readiness)) {
      checks[name] = await check(this).catch((e: Error) => ({ ok: false, reason: e.message }));
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const hook of this.closeHooks.reverse()) await hook().catch((e: Error) => this.logger.warn({ err: e.message }, 'stop hook failed'));
    await this.revocationFeed?.stop();
    await this.relay?.stop();
    await this.nats?.drain().catch(() => undefined);
    await this.dataSource?.destroy().catch(() => undefined);
  }
}

/**
 * Runs `attempt` until it succeeds: again 200 ms after a failure, the wait doubling up to
 * `maxDelayMs`; refused (throws) once `stopped()` says so, before an attempt.
 */
export async function retrying(
  attempt: () => Promise<void>,
  o: { maxDelayMs: number; stopped: () => boolean; failed: (reason: string, retryInMs: number) => void },
): Promise<void> {
  for (let delay = 200; ; delay = Math.min(delay * 2, o.maxDelayMs)) {
    if (o.stopped()) throw new Error('stopped before it succeeded');
    try {
      return await attempt();
    } catch (error) {
      o.failed(error instanceof Error ? error.message : String(error), delay);
      await sleep(delay);
    }
  }
}

/** A service's PostgreSQL connection, as its least-privilege role (`app`) or the schema's owner (migrations). */
export function pgConnection(service: ServiceName, c: ServiceConfig, user: 'app' | 'owner'): PgConnectionOptions {
  return {
    host: c.PGHOST,
    port: c.PGPORT,
    database: c.PGDATABASE,
    user: user === 'app' ? c.PGUSER : c.PG_MIGRATION_USER,
    password: user === 'app' ? c.PGPASSWORD : c.PG_MIGRATION_PASSWORD,
    schema: c.PG_SCHEMA,
    applicationName: `palisade-${service}`,
    poolSize: c.PG_POOL_SIZE,
    sslCaPem: c.PG_SSL_CA_FILE ? readFileSync(c.PG_SSL_CA_FILE, 'utf8') : undefined,
  };
}

/** The event store's migrations and the service's own, as the schema's owner (once: before the app connects). */
export async function runMigrations(service: ServiceName, c: ServiceConfig, logger: Logger, migrations: readonly MigrationFactory[]): Promise<void> {
  const factories = [...EVENT_STORE_MIGRATIONS, ...migrations];
  const migrator = createDataSource(
    { ...pgConnection(service, c, 'owner'), poolSize: 1 },
    factories.map((f) => f(c.PG_SCHEMA, c.PGUSER)),
  );
  await migrator.initialize();
  try {
    const ran = await migrator.runMigrations({ transaction: 'each' });
    if (ran.length > 0) logger.info({ migrations: ran.map((m) => m.name) }, 'database migrated');
  } finally {
    await migrator.destroy();
  }
}

/**
 * The platform's event store once PostgreSQL is connected, for services built before it is;
 * before that every call is refused as `unavailable` with `whileStarting` (requests do not
 * get this far: the readiness gate answers 503).
 */
export function connectedEventStore(platform: Pick<Platform, 'eventStore'>, whileStarting: string): EventStore {
  const store = (): EventStore => {
    if (!platform.eventStore) throw new PalisadeError('unavailable', whileStarting);
    return platform.eventStore;
  };
  return {
    inTransaction: <T>(work: (tx: Transaction) => Promise<T>): Promise<T> => store().inTransaction(work),
    readStream: (tx: Transaction, streamId: string): Promise<ReadStreamResult> => store().readStream(tx, streamId),
    appendToStream: (tx: Transaction, streamId: string, events: readonly EventEnvelope[], expectedVersion: ExpectedVersion): Promise<AppendResult> =>
      store().appendToStream(tx, streamId, events, expectedVersion),
  };
}
