import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ident } from './data-source';
import { sqlMigration } from './sql-migration';

/** NOTIFY channel an append wakes the outbox relay on (delivered at commit). */
export const EVENTS_APPENDED_CHANNEL = 'palisade_events_appended';

/**
 * Set to `on` transaction-locally (`set_config(…, 'on', true)`) by a statement whose writer
 * rings the relay itself once the transaction committed (`EventsAppendedRinger`): the append
 * trigger then skips its NOTIFY (`eventsNotifyAfterCommitMigration`).
 */
export const NOTIFY_AFTER_COMMIT_SETTING = 'palisade.notify_after_commit';

/**
 * The event store: append-only in the database itself. The application role may only
 * SELECT and INSERT; a trigger refuses UPDATE, DELETE and TRUNCATE even to the owner.
 * `transaction_id` lets the relay read in commit-safe order (see outbox-relay.ts).
 */
export function eventStoreMigration(schema: string, appRole: string): new () => MigrationInterface {
  const s = ident(schema);
  const app = ident(appRole);
  return class EventStore1732240000000 implements MigrationInterface {
    name = 'EventStore1732240000000';

    async up(q: QueryRunner): Promise<void> {
      await q.query(`
        CREATE TABLE ${s}.events (
          global_position bigserial PRIMARY KEY,
          transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
          stream_id       text        NOT NULL CHECK (length(stream_id) BETWEEN 1 AND 200),
          stream_version  integer     NOT NULL CHECK (stream_version > 0),
          event_id        uuid        NOT NULL UNIQUE,
          event_type      text        NOT NULL,
          tenant_id       text        NOT NULL,
          envelope        jsonb       NOT NULL,
          recorded_at     timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
        )`);
      await q.query(`CREATE INDEX events_commit_order ON ${s}.events (transaction_id, global_position)`);
      await q.query(`CREATE INDEX events_tenant ON ${s}.events (tenant_id, global_position)`);
      await q.query(`
        CREATE FUNCTION ${s}.forbid_event_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the event store is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$`);
      await q.query(`CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ${s}.events
                     FOR EACH ROW EXECUTE FUNCTION ${s}.forbid_event_mutation()`);
      await q.query(`CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ${s}.events
                     FOR EACH STATEMENT EXECUTE FUNCTION ${s}.forbid_event_mutation()`);
      await q.query(`
        CREATE FUNCTION ${s}.notify_events_appended() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('${EVENTS_APPENDED_CHANNEL}', '');
          RETURN NULL;
        END $$`);
      await q.query(`CREATE TRIGGER events_appended AFTER INSERT ON ${s}.events
                     FOR EACH STATEMENT EXECUTE FUNCTION ${s}.notify_events_appended()`);
      await q.query(`
        CREATE TABLE ${s}.outbox_checkpoints (
          relay           text        PRIMARY KEY,
          transaction_id  xid8        NOT NULL,
          global_position bigint      NOT NULL,
          updated_at      timestamptz NOT NULL DEFAULT now()
        )`);
      await q.query(`GRANT USAGE ON SCHEMA ${s} TO ${app}`);
      await q.query(`REVOKE ALL ON ${s}.events FROM PUBLIC, ${app}`);
      await q.query(`GRANT SELECT, INSERT ON ${s}.events TO ${app}`);
      await q.query(`GRANT USAGE ON SEQUENCE ${s}.events_global_position_seq TO ${app}`);
      await q.query(`GRANT SELECT, INSERT, UPDATE ON ${s}.outbox_checkpoints TO ${app}`);
    }

    async down(): Promise<void> {
      throw new Error('the event store is never rolled back');
    }
  };
}

/**
 * The append trigger skips its NOTIFY when the transaction set `NOTIFY_AFTER_COMMIT_SETTING`:
 * PostgreSQL 15 serialises the commits of all transactions of the cluster that sent a NOTIFY
 * on one lock held through the WAL flush, so a notifying commit waits for every other one
 * (no group commit: 4 clients appending 25 rows a transaction made 670-715 commits/s with
 * the NOTIFY, 3,000-3,500 without). Every insert that does not set it notifies as before.
 * The credential service's LeaseNotify1796306000000 created the same function in its schema
 * first; this one replaces it with the same body, so either order leaves the same trigger.
 */
export function eventsNotifyAfterCommitMigration(schema: string): new () => MigrationInterface {
  const s = ident(schema);
  const body = (skip: boolean) => `
    CREATE OR REPLACE FUNCTION ${s}.notify_events_appended() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      ${skip ? `IF current_setting('${NOTIFY_AFTER_COMMIT_SETTING}', true) = 'on' THEN RETURN NULL; END IF;` : ''}
      PERFORM pg_notify('${EVENTS_APPENDED_CHANNEL}', '');
      RETURN NULL;
    END $$`;
  return class EventsNotifyAfterCommit1796424000000 implements MigrationInterface {
    name = 'EventsNotifyAfterCommit1796424000000';

    async up(q: QueryRunner): Promise<void> {
      await q.query(body(true));
    }

    async down(q: QueryRunner): Promise<void> {
      await q.query(body(false));
    }
  };
}

/**
 * Events up to a page (8,160 bytes a row) stay in the row, uncompressed. By default a row
 * over ~2 KB is TOASTed: PostgreSQL tries pglz on the envelope, then moves it to the TOAST
 * table in ~2 KB chunks, each a row and an index entry of its own. A model call's event
 * (the sealed prompt and answer, ~6 KB of base64 that does not compress) paid both: 193–215
 * µs of the backend's CPU a row against 80–108 kept in the row (4,000 rows of 6 KB, 16 a
 * statement, alternated). Larger events are TOASTed as before.
 */
export const eventsInlineEnvelopesMigration = sqlMigration('EventsInlineEnvelopes1796500000000', (s) => [
  `ALTER TABLE ${s}.events SET (toast_tuple_target = 8160)`,
]);

/** The event store's migrations, in order: what every service's schema (and every test schema) runs before its own. */
export const EVENT_STORE_MIGRATIONS: ReadonlyArray<(schema: string, appRole: string) => new () => MigrationInterface> = [
  eventStoreMigration,
  eventsNotifyAfterCommitMigration,
  eventsInlineEnvelopesMigration,
];
