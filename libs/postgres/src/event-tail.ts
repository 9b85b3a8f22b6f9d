import { Client } from 'pg';
import { PalisadeError, type EventEnvelope } from '@palisade/contracts';
import { ident, longLivedClientConfig, type PgConnectionOptions } from './data-source';
import { EVENTS_APPENDED_CHANNEL } from './event-store.migration';
import { followerLagMs, nextBackoffMs, type FollowerStatus } from './follower';
import type { RelayLogger } from './outbox-relay';
import { preparedSql, type PreparedSql } from './pg-transaction';

export interface EventTailOptions {
  /** Connection of the service's application role (SELECT on its events). */
  connection: PgConnectionOptions;
  /** Only these event types, as a SQL LIKE pattern (e.g. `policy.%`). */
  typePattern: string;
  /** Called with each batch of newly committed events, in commit-safe order, one batch at a time. */
  onEvents: (events: EventEnvelope[]) => void | Promise<void>;
  logger: RelayLogger;
  /** Look again this often even without a notification. Default 250 ms. */
  pollIntervalMs?: number;
  batchSize?: number;
}

interface Position {
  tx: string;
  pos: string;
}

/** The consumer's own failure: the connection is fine, the batch is read again. */
class ConsumerFailed extends Error {}

/**
 * Follows a service's own event store from "now" on, for in-memory read models that
 * every instance keeps (caches, policy engines): woken by the append notification,
 * it reads events in the same commit-safe order as the outbox relay (an event is read
 * only once every transaction older than its own has ended, so none is skipped).
 * `load` reads the history of one tenant up to the tail's position, inside the same
 * serial section as the tail, so a model built by `load` and then fed by the tail
 * sees every event exactly once. The position lives in memory: each instance starts
 * afresh, and a lost connection (terminated backend, failover, restart) is replaced,
 * with backoff, by a new one that resumes from the same position.
 */
export class EventTail {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private position: Position | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private notified = false;
  private readonly current: FollowerStatus = { state: 'stopped' };
  private readonly events: string;
  private readonly read: PreparedSql;

  constructor(private readonly options: EventTailOptions) {
    this.events = `${ident(options.connection.schema)}.events`;
    // run at every commit it is woken by: planned once per connection
    this.read = preparedSql(
      `SELECT transaction_id::text AS tx, global_position::text AS pos, envelope FROM ${this.events}
        WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          AND event_type LIKE $3
        ORDER BY transaction_id, global_position
        LIMIT $4`,
    );
  }

  /** Connect, take the current position, and follow. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    await this.connection();
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
    this.current.state = 'stopped';
  }

  /** Connection state and when the tail last had read everything committed. */
  status(): FollowerStatus {
    return { ...this.current };
  }

  /** Milliseconds since the tail last had read everything committed (Infinity if never): cheap, for hot paths. */
  lagMs(now: number): number {
    return followerLagMs(this.current, now);
  }

  /** Read whatever committed since the last batch, now (e.g. right after a local append). */
  catchUp(): Promise<void> {
    return this.serial(async () => {
      while (await this.readBatch());
    });
  }

  /**
   * The events of one tenant up to the tail's position, handed to `apply` before the
   * tail delivers anything newer.
   */
  load(tenantId: string, apply: (events: EventEnvelope[]) => void): Promise<void> {
    return this.serial(async () => {
      const client = await this.connection();
      const position = this.position!;
      const { rows } = await client.query(
        `SELECT envelope FROM ${this.events}
          WHERE tenant_id = $1 AND event_type LIKE $2 AND (transaction_id, global_position) <= ($3::xid8, $4::bigint)
          ORDER BY transaction_id, global_position`,
        [tenantId, this.options.typePattern, position.tx, position.pos],
      );
      apply(rows.map((r: { envelope: EventEnvelope }) => r.envelope));
    });
  }

  /** One at a time; a broken connection is dropped (the next call connects again) and reported as unavailable. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const guarded = async () => {
      try {
        return await work();
      } catch (error) {
        if (error instanceof ConsumerFailed || error instanceof PalisadeError) throw error;
        this.drop(this.client, error);
        throw new PalisadeError('unavailable', 'the event store connection was lost; reconnecting');
      }
    };
    const result = this.queue.then(guarded, guarded);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** The live connection, or a new one (LISTEN again; the position is kept, or taken on the first connect). */
  private connection(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    this.current.state = 'connecting';
    const client = new Client(longLivedClientConfig({ ...this.options.connection, applicationName: `${this.options.connection.applicationName}-tail` }));
    client.on('error', (error: Error) => this.drop(client, error));
    client.on('end', () => this.drop(client, new Error('connection ended')));
    client.on('notification', () => {
      this.notified = true;
      this.wake?.();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_APPENDED_CHANNEL}`);
      if (!this.position) {
        // Every transaction below xmin has ended: what it wrote is "before" this tail.
        const { rows } = await client.query('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin');
        this.position = { tx: rows[0].xmin, pos: '0' };
      }
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.current.state = 'disconnected';
      this.current.lastError = (error as Error).message;
      throw error;
    }
    this.client = client;
    this.current.state = 'following';
    this.options.logger.info({ position: this.position }, 'event tail connected');
    return client;
  }

  /** Forget a broken connection; the next read connects again and resumes from the position. */
  private drop(client: Client | undefined, error: unknown): void {
    if (!client || this.client !== client) return;
    this.client = undefined;
    this.current.state = this.stopped ? 'stopped' : 'disconnected';
    this.current.lastError = error instanceof Error ? error.message : String(error);
    if (!this.stopped) this.options.logger.warn({ err: this.current.lastError }, 'event tail connection lost; reconnecting');
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.wake?.();
  }

  private async run(): Promise<void> {
    const interval = this.options.pollIntervalMs ?? 250;
    let backoff: number | undefined;
    while (!this.stopped) {
      try {
        const more = await this.serial(() => this.readBatch());
        backoff = undefined;
        if (more) continue;
      } catch (error) {
        if (this.stopped) return;
        backoff = nextBackoffMs(backoff);
        const cause = error instanceof ConsumerFailed ? error.message : (this.current.lastError ?? (error as Error).message);
        this.options.logger.error({ err: cause, retryInMs: backoff }, 'event tail read failed; retrying');
        await this.pause(backoff);
        continue;
      }
      if (this.notified) {
        this.notified = false;
        continue;
      }
      await this.pause(interval);
    }
  }

  private async pause(ms: number): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /** One batch; true when there may be more. */
  private async readBatch(): Promise<boolean> {
    const client = await this.connection();
    const limit = this.options.batchSize ?? 500;
    const position = this.position!;
    const asOf = Date.now();
    const { rows } = await client.query({ ...this.read, values: [position.tx, position.pos, this.options.typePattern, limit] });
    if (rows.length > 0) {
      const last = rows[rows.length - 1];
      try {
        await this.options.onEvents(rows.map((r: { envelope: EventEnvelope }) => r.envelope));
      } catch (error) {
        throw new ConsumerFailed(`event tail consumer failed: ${(error as Error).message}`);
      }
      this.position = { tx: last.tx, pos: last.pos };
    }
    if (rows.length < limit) this.current.caughtUpAt = asOf;
    return rows.length === limit;
  }
}
