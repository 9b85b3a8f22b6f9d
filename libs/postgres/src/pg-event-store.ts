import { ConcurrencyError, isSealedPersonal, PalisadeError, validateForPublish, type EventEnvelope, type PersonalSealer } from '@palisade/contracts';
import type {
  AppendResult,
  EventStore,
  ExpectedVersion,
  ReadStreamResult,
  StoredEvent,
  Transaction,
} from '@palisade/eventsourcing';
import type { DataSource, EntityManager } from 'typeorm';
import { ident } from './data-source';

/** The SQL handle behind a Transaction, for repositories that write in the same one. */
export function sqlOf(tx: Transaction): EntityManager {
  return tx as unknown as EntityManager;
}

interface PgError {
  code?: string;
  constraint?: string;
}

/**
 * Event store on PostgreSQL, in the schema its migration created. With a `sealer`, the
 * `personal` member of every appended event is sealed before the INSERT (issue 10): the
 * `events` table, and so the outbox relay and JetStream, never hold personal data in
 * plaintext. The caller keeps its plaintext events in memory (inline projections get them).
 */
export class PgEventStore implements EventStore {
  private readonly events: string;

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
    private readonly sealer?: PersonalSealer,
  ) {
    this.events = `${ident(schema)}.events`;
  }

  inTransaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.dataSource.transaction((manager) => work(manager as unknown as Transaction));
  }

  async readStream(tx: Transaction, streamId: string): Promise<ReadStreamResult> {
    const rows: Array<{ stream_version: number; envelope: EventEnvelope }> = await sqlOf(tx).query(
      `SELECT stream_version, envelope FROM ${this.events} WHERE stream_id = $1 ORDER BY stream_version`,
      [streamId],
    );
    const events: StoredEvent[] = rows.map((r) => ({ streamId, version: r.stream_version, event: r.envelope }));
    return { version: events.length === 0 ? 0 : events[events.length - 1].version, events };
  }

  async appendToStream(
    tx: Transaction,
    streamId: string,
    events: readonly EventEnvelope[],
    expectedVersion: ExpectedVersion,
  ): Promise<AppendResult> {
    for (const event of events) {
      const validation = validateForPublish(event);
      if (!validation.ok) {
        throw new PalisadeError('validation', `event ${event.type} is malformed`, validation.problems);
      }
    }
    const sql = sqlOf(tx);
    const [{ version }]: Array<{ version: number }> = await sql.query(
      `SELECT coalesce(max(stream_version), 0)::int AS version FROM ${this.events} WHERE stream_id = $1`,
      [streamId],
    );
    if (expectedVersion !== 'any' && expectedVersion !== version) {
      throw new ConcurrencyError(streamId, expectedVersion, version);
    }
    if (events.length === 0) return { nextVersion: version };
    const stored = await this.sealPersonal(events);
    try {
      await sql.query(
        `INSERT INTO ${this.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT $1, x.v, x.id, x.t, x.tn, x.e
           FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[]) AS x(v, id, t, tn, e)`,
        [
          streamId,
          stored.map((_, i) => version + i + 1),
          stored.map((e) => e.id),
          stored.map((e) => e.type),
          stored.map((e) => e.tenantId),
          stored.map((e) => JSON.stringify(e)),
        ],
      );
    } catch (error) {
      const pg = error as PgError;
      if (pg.code === '23505' && pg.constraint === 'events_stream_version_unique') {
        throw new ConcurrencyError(streamId, version, version + 1);
      }
      if (pg.code === '23505') throw new PalisadeError('conflict', 'an event with this id is already stored');
      throw error;
    }
    return { nextVersion: version + events.length };
  }

  /**
   * One event into each of many new streams (each appended at expected version 0), in one
   * INSERT: a group commit of one-event streams (llm-router's model calls) costs one
   * statement instead of a version read and an insert per stream. A stream that already
   * exists fails the whole append with a ConcurrencyError (nothing of it is stored).
   */
  async appendToNewStreams(tx: Transaction, appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void> {
    if (appends.length === 0) return;
    if (new Set(appends.map((a) => a.streamId)).size !== appends.length) throw new PalisadeError('validation', 'each stream is appended to once');
    for (const { event } of appends) {
      const validation = validateForPublish(event);
      if (!validation.ok) throw new PalisadeError('validation', `event ${event.type} is malformed`, validation.problems);
    }
    const stored = await this.sealPersonal(appends.map((a) => a.event));
    try {
      await sqlOf(tx).query(
        `INSERT INTO ${this.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT x.s, 1, x.id, x.t, x.tn, x.e
           FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[]) AS x(s, id, t, tn, e)`,
        [appends.map((a) => a.streamId), stored.map((e) => e.id), stored.map((e) => e.type), stored.map((e) => e.tenantId), stored.map((e) => JSON.stringify(e))],
      );
    } catch (error) {
      const pg = error as PgError;
      if (pg.code === '23505' && pg.constraint === 'events_stream_version_unique') throw new ConcurrencyError(appends.length === 1 ? appends[0].streamId : 'one of the streams', 0, 1);
      if (pg.code === '23505') throw new PalisadeError('conflict', 'an event with this id is already stored');
      throw error;
    }
  }

  /**
   * `appendToNewStreams` as one statement in a transaction of its own (PostgreSQL's implicit
   * one): one round trip where BEGIN, INSERT, COMMIT take three, for writers whose whole
   * transaction is this append (llm-router's group-committed model calls). All or nothing,
   * like the statement.
   */
  commitToNewStreams(appends: ReadonlyArray<{ streamId: string; event: EventEnvelope }>): Promise<void> {
    return this.appendToNewStreams(this.dataSource.manager as unknown as Transaction, appends);
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
