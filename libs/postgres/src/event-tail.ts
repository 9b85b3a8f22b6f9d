import { Client } from 'pg';
import type { EventEnvelope } from '@palisade/contracts';
import { ident, pgClientConfig, type PgConnectionOptions } from './data-source';
import { EVENTS_APPENDED_CHANNEL } from './event-store.migration';
import type { RelayLogger } from './outbox-relay';

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a service's own event store from "now" on, for in-memory read models that
 * every instance keeps (caches, policy engines): woken by the append notification,
 * it reads events in the same commit-safe order as the outbox relay (an event is read
 * only once every transaction older than its own has ended, so none is skipped).
 * `load` reads the history of one tenant up to the tail's position, inside the same
 * serial section as the tail, so a model built by `load` and then fed by the tail
 * sees every event exactly once. Nothing is stored: each instance starts afresh.
 */
export class EventTail {
  private client: Client | undefined;
  private position: Position = { tx: '0', pos: '0' };
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private notified = false;
  private readonly events: string;

  constructor(private readonly options: EventTailOptions) {
    this.events = `${ident(options.connection.schema)}.events`;
  }

  /** Connect, take the current position, and follow. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    await this.connect();
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.client?.end().catch(() => undefined);
    this.client = undefined;
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
      const { rows } = await this.client!.query(
        `SELECT envelope FROM ${this.events}
          WHERE tenant_id = $1 AND event_type LIKE $2 AND (transaction_id, global_position) <= ($3::xid8, $4::bigint)
          ORDER BY transaction_id, global_position`,
        [tenantId, this.options.typePattern, this.position.tx, this.position.pos],
      );
      apply(rows.map((r: { envelope: EventEnvelope }) => r.envelope));
    });
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    if (!this.client) return Promise.reject(new Error('event tail is not connected'));
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async connect(): Promise<void> {
    const client = new Client(pgClientConfig({ ...this.options.connection, applicationName: `${this.options.connection.applicationName}-tail` }));
    client.on('error', (error: Error) => this.options.logger.warn({ err: error.message }, 'event tail connection lost'));
    client.on('notification', () => {
      this.notified = true;
      this.wake?.();
    });
    await client.connect();
    await client.query(`LISTEN ${EVENTS_APPENDED_CHANNEL}`);
    // Every transaction below xmin has ended: what it wrote is "before" this tail.
    const { rows } = await client.query('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin');
    this.position = { tx: rows[0].xmin, pos: '0' };
    this.client = client;
  }

  private async run(): Promise<void> {
    const interval = this.options.pollIntervalMs ?? 250;
    while (!this.stopped) {
      try {
        const more = await this.serial(() => this.readBatch());
        if (more) continue;
      } catch (error) {
        this.options.logger.error({ err: (error as Error).message }, 'event tail read failed; retrying');
        await sleep(1000);
        if (this.stopped) return;
        if (!this.client || (this.client as unknown as { _ending?: boolean })._ending) {
          await this.connect().catch(() => undefined);
        }
        continue;
      }
      if (this.notified) {
        this.notified = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One batch; true when there may be more. */
  private async readBatch(): Promise<boolean> {
    const limit = this.options.batchSize ?? 500;
    const { rows } = await this.client!.query(
      `SELECT transaction_id::text AS tx, global_position::text AS pos, envelope FROM ${this.events}
        WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
          AND event_type LIKE $3
        ORDER BY transaction_id, global_position
        LIMIT $4`,
      [this.position.tx, this.position.pos, this.options.typePattern, limit],
    );
    if (rows.length === 0) return false;
    const last = rows[rows.length - 1];
    await this.options.onEvents(rows.map((r: { envelope: EventEnvelope }) => r.envelope));
    this.position = { tx: last.tx, pos: last.pos };
    return rows.length === limit;
  }
}
