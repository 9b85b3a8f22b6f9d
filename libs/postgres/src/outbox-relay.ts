import { createHash } from 'node:crypto';
import { Client } from 'pg';
import type { EventEnvelope, EventPublisher } from '@palisade/contracts';
import { ident, longLivedClientConfig, type PgConnectionOptions } from './data-source';
import { EVENTS_APPENDED_CHANNEL } from './event-store.migration';
import { nextBackoffMs, type FollowerStatus } from './follower';
import { pgStatement, preparedSql, type PreparedSql } from './pg-transaction';
import { setTimeout as sleep } from 'node:timers/promises';

/** Minimal structural logger (pino-compatible). */
export interface RelayLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface OutboxRelayOptions {
  /** Connection of the service's application role. */
  connection: PgConnectionOptions;
  publisher: EventPublisher;
  logger: RelayLogger;
  /** Checkpoint name; one relay per name holds the lock at a time. */
  relayName?: string;
  batchSize?: number;
  /** Look again this often even without a notification (long transactions end silently). */
  pollIntervalMs?: number;
  /** How long a standby waits before trying to take over. */
  standbyRetryMs?: number;
  onPublished?: (events: readonly EventEnvelope[], publishedAtMs: number) => void;
}

export type RelayState = 'stopped' | 'connecting' | 'standby' | 'active' | 'failing';

export interface RelayStatus extends FollowerStatus {
  state: RelayState;
  publishedTotal: number;
}

/** The publisher's failure: the database connection is fine and kept (with its lock). */
class PublishFailed extends Error {}

interface Checkpoint {
  transactionId: string;
  position: string;
}


/**
 * Relays committed events from the event store to the publisher (JetStream), in commit
 * order, exactly once downstream:
 *
 * - Nothing skipped when transactions commit out of order: an event becomes eligible
 *   only when every transaction that started before its own has ended, i.e. its
 *   transaction id is below the xmin of the current snapshot. Events are read in
 *   (transaction id, position) order after the checkpoint.
 * - Nothing duplicated when the relay dies mid-batch: the checkpoint moves only after
 *   the publisher acknowledged the whole batch, and the re-published events carry
 *   their event id as JetStream's de-duplication id.
 * - One active relay per (schema, name): a session advisory lock on the relay's own
 *   connection; when that connection dies the lock goes with it and a standby takes over.
 * - No network call inside a transaction: reads and the checkpoint write are single
 *   autocommit statements; publishing happens between them. The checkpoint is written
 *   without waiting for its flush (re-publishing is harmless, waiting is not free).
 * - Any database error drops the connection; the relay connects again with backoff
 *   and resumes from its stored checkpoint (a standby may have taken over meanwhile).
 */
export class OutboxRelay {
  private client: Client | undefined;
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private notified = false;
  private checkpoint: Checkpoint = { transactionId: '0', position: '0' };
  private readonly relayName: string;
  private readonly lockKey: string;
  private readonly sql: { read: PreparedSql; loadCheckpoint: string; saveCheckpoint: PreparedSql };
  private readonly current: RelayStatus = { state: 'stopped', publishedTotal: 0 };

  constructor(private readonly options: OutboxRelayOptions) {
    const schema = ident(options.connection.schema);
    this.relayName = options.relayName ?? 'jetstream';
    // 63-bit advisory lock key derived from schema and relay name.
    this.lockKey = BigInt.asIntN(64, BigInt(`0x${createHash('sha256').update(`${schema}/${this.relayName}`).digest('hex').slice(0, 16)}`)).toString();
    // the read and the checkpoint run every cycle: planned once per connection
    this.sql = {
      read: preparedSql(`SELECT transaction_id::text AS tx, global_position::text AS pos, envelope
               FROM ${schema}.events
              WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
                AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY transaction_id, global_position
              LIMIT $3`),
      loadCheckpoint: `SELECT transaction_id::text AS tx, global_position::text AS pos
                         FROM ${schema}.outbox_checkpoints WHERE relay = $1`,
      saveCheckpoint: preparedSql(`INSERT INTO ${schema}.outbox_checkpoints (relay, transaction_id, global_position, updated_at)
                       VALUES ($1, $2::xid8, $3::bigint, now())
                       ON CONFLICT (relay) DO UPDATE
                         SET transaction_id = EXCLUDED.transaction_id,
                             global_position = EXCLUDED.global_position,
                             updated_at = EXCLUDED.updated_at`),
    };
  }

  status(): RelayStatus {
    return { ...this.current };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.disconnect();
    this.current.state = 'stopped';
  }

  private async run(): Promise<void> {
    const batchSize = this.options.batchSize ?? 1000;
    let backoffMs: number | undefined;
    while (!this.stopped) {
      try {
        if (!this.client) await this.connect();
        if (!(await this.holdLock())) {
          this.setState('standby');
          await this.sleepUnlessStopped(this.options.standbyRetryMs ?? 1000);
          continue;
        }
        this.setState('active');
        const relayed = await this.relayBatch(batchSize);
        backoffMs = undefined;
        if (relayed < batchSize) await this.waitForAppend(this.options.pollIntervalMs ?? 200);
      } catch (error) {
        if (this.stopped) break;
        this.current.lastError = error instanceof Error ? error.message : String(error);
        this.setState('failing');
        backoffMs = nextBackoffMs(backoffMs);
        this.options.logger.warn({ err: this.current.lastError, retryInMs: backoffMs }, 'outbox relay cycle failed; retrying');
        if (!(error instanceof PublishFailed)) await this.disconnect();
        await this.sleepUnlessStopped(backoffMs);
      }
    }
  }

  private async connect(): Promise<void> {
    this.setState('connecting');
    const client = new Client(longLivedClientConfig({ ...this.options.connection, applicationName: `${this.options.connection.applicationName}-relay` }));
    const lost = (error: Error) => {
      if (this.client !== client) return;
      this.options.logger.warn({ err: error.message }, 'outbox relay connection lost; reconnecting');
      this.current.lastError = error.message;
      void this.disconnect();
      this.wake?.();
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    client.on('notification', () => {
      this.notified = true;
      this.wake?.();
    });
    try {
      await client.connect();
      // The checkpoint need not wait for its flush to disk: one lost in a crash of the
      // server only re-publishes events JetStream de-duplicates by id (window 1 h).
      await client.query(`SET synchronous_commit TO off; LISTEN ${EVENTS_APPENDED_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
  }

  private locked = false;

  private async holdLock(): Promise<boolean> {
    if (this.locked) return true;
    const { rows } = await this.client!.query('SELECT pg_try_advisory_lock($1::bigint) AS locked', [this.lockKey]);
    if (!rows[0].locked) return false;
    this.locked = true;
    const saved = await this.client!.query(this.sql.loadCheckpoint, [this.relayName]);
    this.checkpoint = saved.rows[0] ? { transactionId: saved.rows[0].tx, position: saved.rows[0].pos } : { transactionId: '0', position: '0' };
    this.options.logger.info({ relay: this.relayName, checkpoint: this.checkpoint }, 'outbox relay active');
    return true;
  }

  private async relayBatch(batchSize: number): Promise<number> {
    const client = this.client!;
    this.notified = false;
    const asOf = Date.now();
    // the callback API, as the hot statements of the event store (pgStatement): the rows read are garbage once published
    const { rows } = await pgStatement(client, this.sql.read, [this.checkpoint.transactionId, this.checkpoint.position, batchSize]);
    if (rows.length === 0) {
      this.current.caughtUpAt = asOf;
      return 0;
    }
    const events = rows.map((r: { envelope: EventEnvelope }) => r.envelope);
    try {
      await this.options.publisher.publish(events);
    } catch (error) {
      throw new PublishFailed(error instanceof Error ? error.message : String(error));
    }
    const publishedAt = Date.now();
    const last = rows[rows.length - 1];
    await pgStatement(client, this.sql.saveCheckpoint, [this.relayName, last.tx, last.pos]);
    this.checkpoint = { transactionId: last.tx, position: last.pos };
    this.current.publishedTotal += events.length;
    this.options.onPublished?.(events, publishedAt);
    if (rows.length < batchSize) this.current.caughtUpAt = asOf;
    return rows.length;
  }

  private async waitForAppend(timeoutMs: number): Promise<void> {
    if (this.notified || this.stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
    this.wake = undefined;
  }

  private async sleepUnlessStopped(ms: number): Promise<void> {
    if (this.stopped) return;
    await Promise.race([sleep(ms), new Promise<void>((resolve) => (this.wake = resolve))]);
    this.wake = undefined;
  }

  private async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.locked = false;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }

  private setState(state: RelayState): void {
    if (this.current.state !== state) {
      this.current.state = state;
      if (state === 'active') this.current.lastError = undefined;
    }
  }
}
