import { ConcurrencyError, isSealedPersonal, PalisadeError, validateForPublish, type EventEnvelope, type PersonalSealer } from '@palisade/contracts';
import type {
  AppendResult,
  EventStore,
  ExpectedVersion,
  ReadStreamResult,
  StoredEvent,
  Transaction,
} from '@palisade/eventsourcing';
import type { DataSource } from 'typeorm';
import { ident, pgPoolOf } from './data-source';
import { NOTIFY_AFTER_COMMIT_SETTING } from './event-store.migration';
import { eventsAppendedRinger, type RingPool } from './events-appended-ringer';
import { afterCommitOf, poolSql, preparedSql, runInTransaction, type PreparedSql, type SqlRunner } from './pg-transaction';

/** The SQL handle behind a Transaction, for repositories that write in the same one. */
export function sqlOf(tx: Transaction): SqlRunner {
  return tx as unknown as SqlRunner;
}

interface PgError {
  code?: string;
  constraint?: string;
  column?: string;
}

/**
 * A statement that takes its parameters through `param` (which answers its placeholder,
 * `$n`), so that statements can share one parameter list: run alone (`runStatement`) or as
 * parts of one statement (`PgEventStore.commitToStream`).
 */
export type SqlStatement = (param: (value: unknown) => string) => string;

/** Runs a statement on its own, in the transaction. */
export function runStatement(tx: Transaction, statement: SqlStatement): Promise<unknown> {
  const params: unknown[] = [];
  const sql = statement((value) => `$${params.push(value)}`);
  return sqlOf(tx).query(sql, params);
}

/** Every event as the contract allows it to be stored and published; else a validation error naming the first malformed one. */
function assertPublishable(events: readonly EventEnvelope[]): void {
  for (const event of events) {
    const validation = validateForPublish(event);
    if (!validation.ok) throw new PalisadeError('validation', `event ${event.type} is malformed`, validation.problems);
  }
}

/** A statement's column that, when `on` is true, makes the events trigger skip its NOTIFY for the rest of the transaction. */
const notifyAfterCommit = (on: string) => `CASE WHEN ${on} THEN set_config('${NOTIFY_AFTER_COMMIT_SETTING}', 'on', true) END AS notify_after_commit`;

/**
 * Event store on PostgreSQL, in the schema its migration created. Its appends do not NOTIFY
 * inside their transaction (PostgreSQL serialises notifying commits cluster-wide, WAL flush
 * included, which would undo group commit): each ring the relay after the commit, coalesced
 * per pool (`EventsAppendedRinger`). An append in a transaction that is not this store's
 * (whose commit it cannot see) lets the trigger notify as before. With a `sealer`, the
 * `personal` member of every appended event is sealed before the INSERT (issue 10): the
 * `events` table, and so the outbox relay and JetStream, never hold personal data in
 * plaintext. The caller keeps its plaintext events in memory (inline projections get them).
 */
export class PgEventStore implements EventStore {
  private readonly events: string;
  /** Single statements, each its own transaction, on the pool (`commitToNewStreams`, `commitToStream`). */
  private readonly statements: SqlRunner;
  private readonly append: PreparedSql;
  private readonly appendNew: PreparedSql;

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
    private readonly sealer?: PersonalSealer,
  ) {
    this.events = `${ident(schema)}.events`;
    this.statements = poolSql(dataSource);
    // The version read, its check (none when $3 is NULL: 'any') and the INSERT. The events travel as one
    // JSON array (one JSON.stringify, no array literal to escape) and PostgreSQL plans the statement once
    // per connection: parsing and planning this WITH cost it more than the insert of 25 events.
    this.append = preparedSql(
      `WITH cur AS (SELECT coalesce(max(stream_version), 0)::int AS version FROM ${this.events} WHERE stream_id = $1),
       appended AS (
         INSERT INTO ${this.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT $1, cur.version + x.i::int, (x.e->>'id')::uuid, x.e->>'type', x.e->>'tenantId', x.e
           FROM cur, jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(e, i)
          WHERE $3::int IS NULL OR cur.version = $3::int
         RETURNING 1)
       SELECT cur.version, (SELECT count(*) FROM appended)::int AS appended, ${notifyAfterCommit('$4::bool')} FROM cur`,
    );
    // the i-th stream id with the i-th event
    this.appendNew = preparedSql(
      `WITH appended AS (
         INSERT INTO ${this.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT x.s, 1, (x.e->>'id')::uuid, x.e->>'type', x.e->>'tenantId', x.e
           FROM ROWS FROM (unnest($1::text[]), jsonb_array_elements($2::jsonb)) AS x(s, e)
         RETURNING 1)
       SELECT count(*)::int AS appended, ${notifyAfterCommit('$3::bool')} FROM appended`,
    );
  }

  /**
   * Wakes the relay after a commit of appends that did not notify (one ringer per pool: see
   * EventsAppendedRinger). No pool once the data source was destroyed (TypeORM drops it): the
   * relay and tails poll, and nothing is left to ring with.
   */
  private readonly ring = (): void => {
    const pool = pgPoolOf<RingPool | undefined>(this.dataSource);
    if (pool) eventsAppendedRinger(pool).ring();
  };

  /** See runInTransaction: BEGIN travels with the first statement, statements answer as TypeORM's did. */
  inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return runInTransaction(this.dataSource, (sql) => work(sql as unknown as Transaction));
  }

  async readStream(tx: Transaction, streamId: string): Promise<ReadStreamResult> {
    const rows: Array<{ stream_version: number; envelope: EventEnvelope }> = await sqlOf(tx).query(
      `SELECT stream_version, envelope FROM ${this.events} WHERE stream_id = $1 ORDER BY stream_version`,
      [streamId],
    );
    const events: StoredEvent[] = rows.map((r) => ({ streamId, version: r.stream_version, event: r.envelope }));
    return { version: events.length === 0 ? 0 : events[events.length - 1].version, events };
  }

  /**
   * The version read, its check and the INSERT are one statement (one round trip where
   * they took two): at another version than `expectedVersion` nothing is inserted and the
   * version found is returned; a concurrent append of the same version meets the unique
   * index. Either is a ConcurrencyError.
   */
  async appendToStream(
    tx: Transaction,
    streamId: string,
    events: readonly EventEnvelope[],
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult> {
    assertPublishable(events);
    const stored = await this.sealPersonal(events);
    const afterCommit = afterCommitOf(sqlOf(tx));
    let found: { version: number; appended: number };
    try {
      [found] = await sqlOf(tx).query(this.append, [streamId, JSON.stringify(stored), expectedVersion === 'any' ? null : expectedVersion, afterCommit !== undefined]);
    } catch (error) {
      const pg = error as PgError;
      if (pg.code === '23505' && pg.constraint === 'events_stream_version_unique') {
        const expected = expectedVersion === 'any' ? 0 : expectedVersion;
        throw new ConcurrencyError(streamId, expected, expected + 1);
      }
      if (pg.code === '23505') throw new PalisadeError('conflict', 'an event with this id is already stored');
      throw error;
    }
    // the statement left the trigger quiet for the rest of the transaction, whatever it found: ring whenever that commits
    afterCommit?.(this.ring);
    if (expectedVersion !== 'any' && expectedVersion !== found.version) throw new ConcurrencyError(streamId, expectedVersion, found.version);
    return { nextVersion: found.version + found.appended };
  }

  /**
   * One event into each of many new streams (each appended at expected version 0), in one
   * INSERT: a group commit of one-event streams (llm-router's model calls) costs one
   * statement instead of a version read and an insert per stream. A stream that already
   * exists fails the whole append with a ConcurrencyError (nothing of it is stored).
   */
  async appendToNewStreams(tx: Transaction, appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void> {
    const afterCommit = afterCommitOf(sqlOf(tx));
    if (await this.insertNewStreams(sqlOf(tx), appends, afterCommit !== undefined)) afterCommit?.(this.ring);
  }

  /** The INSERT of `appendToNewStreams`, with the trigger's NOTIFY skipped when `quiet`; whether anything was appended. */
  private async insertNewStreams(sql: SqlRunner, appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>, quiet: boolean): Promise<boolean> {
    if (appends.length === 0) return false;
    if (new Set(appends.map((a) => a.streamId)).size !== appends.length) throw new PalisadeError('validation', 'each stream is appended to once');
    assertPublishable(appends.map((a) => a.event));
    const stored = await this.sealPersonal(appends.map((a) => a.event));
    try {
      await sql.query(this.appendNew, [appends.map((a) => a.streamId), JSON.stringify(stored), quiet]);
    } catch (error) {
      const pg = error as PgError;
      if (pg.code === '23505' && pg.constraint === 'events_stream_version_unique') throw new ConcurrencyError(appends.length === 1 ? appends[0].streamId : 'one of the streams', 0, 1);
      if (pg.code === '23505') throw new PalisadeError('conflict', 'an event with this id is already stored');
      throw error;
    }
    return true;
  }

  /**
   * `appendToNewStreams` as one statement in a transaction of its own (PostgreSQL's implicit
   * one): one round trip where BEGIN, INSERT, COMMIT take three, for writers whose whole
   * transaction is this append (llm-router's group-committed model calls). All or nothing,
   * like the statement.
   */
  async commitToNewStreams(appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void> {
    if (await this.insertNewStreams(this.statements, appends, true)) this.ring();
  }

  /**
   * Events appended to one stream at `expectedVersion` with the statements that keep their
   * read models, as ONE statement in a transaction of its own: one round trip where BEGIN,
   * a lock, the version read, the INSERT, each read-model statement and COMMIT take one
   * each. `guard` runs first and takes the lock of what the decision was made on: a
   * data-modifying statement returning a row only at the decision's version (e.g. `UPDATE
   * the_row … WHERE version = … RETURNING 1`). A guard that returns nothing, or a stream not
   * at `expectedVersion`, fails the whole statement with a ConcurrencyError (decide again);
   * `also` run after the append and see the database as it was before the statement, so
   * none may depend on another's write or change the guard's row again.
   */
  async commitToStream(streamId: string, events: readonly EventEnvelope[], expectedVersion: number, guard: SqlStatement, also: readonly SqlStatement[] = []): Promise<AppendResult> {
    if (events.length === 0) throw new PalisadeError('validation', 'nothing to append');
    assertPublishable(events);
    const stored = await this.sealPersonal(events);
    const params: unknown[] = [];
    const param = (value: unknown) => `$${params.push(value)}`;
    const stream = param(streamId);
    const expected = param(expectedVersion);
    const rows = param(JSON.stringify(stored));
    const parts = [`guard AS (${guard(param)})`];
    // the append reads the guard (so the guard's lock is taken first, in the order of the other writers:
    // the row, then the events); without the guard's row or at another version the stream version is NULL,
    // which the column refuses: the statement fails whole
    parts.push(`appended AS (
      INSERT INTO ${this.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
      SELECT ${stream}, CASE WHEN g.n > 0 AND cur.version = ${expected}::int THEN ${expected}::int + x.i::int END, (x.e->>'id')::uuid, x.e->>'type', x.e->>'tenantId', x.e
        FROM (SELECT count(*) AS n FROM guard) AS g,
             (SELECT coalesce(max(stream_version), 0) AS version FROM ${this.events} WHERE stream_id = ${stream}) AS cur,
             jsonb_array_elements(${rows}::jsonb) WITH ORDINALITY AS x(e, i)
      RETURNING 1)`);
    also.forEach((statement, i) => parts.push(`also${i} AS (${statement(param)})`));
    try {
      await this.statements.query(`WITH ${parts.join(',\n')} SELECT count(*)::int AS n, ${notifyAfterCommit('true')} FROM appended`, params);
    } catch (error) {
      const pg = error as PgError;
      if ((pg.code === '23502' && pg.column === 'stream_version') || (pg.code === '23505' && pg.constraint === 'events_stream_version_unique')) {
        const [{ version }]: Array<{ version: number }> = await this.statements.query(`SELECT coalesce(max(stream_version), 0)::int AS version FROM ${this.events} WHERE stream_id = $1`, [streamId]);
        throw new ConcurrencyError(streamId, expectedVersion, version);
      }
      if (pg.code === '23505' && pg.constraint === 'events_event_id_key') throw new PalisadeError('conflict', 'an event with this id is already stored');
      throw error;
    }
    this.ring();
    return { nextVersion: expectedVersion + events.length };
  }

  /**
   * The events as they are stored: `personal` sealed, one request for the whole append and
   * none when no event has plaintext personal data. A sealer's failure fails the append (the
   * transaction rolls back); an answer that still holds plaintext, or not the same events,
   * is refused rather than stored. Called by the appends, and before the transaction by
   * the CommandHandler, so that a slow sealer holds no connection.
   */
  async sealPersonal(events: readonly EventEnvelope[]): Promise<readonly EventEnvelope[]> {
    if (!this.sealer || !events.some((e) => e.personal && !isSealedPersonal(e.personal))) return events;
    const sealed = await this.sealer.seal(events);
    const intact =
      sealed.length === events.length &&
      sealed.every((e, i) => e.id === events[i].id && (!e.personal || isSealedPersonal(e.personal)) && !!e.personal === !!events[i].personal);
    if (!intact) throw new PalisadeError('internal', 'personal data was not sealed: refusing to store it');
    return sealed;
  }
}
