import { ConcurrencyError, PalisadeError, validateForPublish, type EventEnvelope } from '@palisade/contracts';
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

/** Event store on PostgreSQL, in the schema its migration created. */
export class PgEventStore implements EventStore {
  private readonly events: string;

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
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
    try {
      await sql.query(
        `INSERT INTO ${this.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT $1, x.v, x.id, x.t, x.tn, x.e
           FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[]) AS x(v, id, t, tn, e)`,
        [
          streamId,
          events.map((_, i) => version + i + 1),
          events.map((e) => e.id),
          events.map((e) => e.type),
          events.map((e) => e.tenantId),
          events.map((e) => JSON.stringify(e)),
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
}
