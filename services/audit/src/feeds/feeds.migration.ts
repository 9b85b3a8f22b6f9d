import { sqlMigration } from '@palisade/postgres';

/**
 * SIEM feeds: their configuration per tenant (the HEC token only wrapped by the KEK) and
 * a durable cursor per (feed, topic, partition) = the next Kafka offset to deliver,
 * advanced only after the SIEM acknowledged. A deleted feed keeps its row (deleted_at)
 * for the record; the application role never deletes.
 */
export const feedsMigration = sqlMigration('AuditFeeds1763800000000', (s, app) => [
  `
        CREATE TABLE ${s}.audit_feeds (
          id                uuid        PRIMARY KEY,
          tenant_id         text        NOT NULL,
          kind              text        NOT NULL CHECK (kind IN ('splunk-hec', 'syslog')),
          format            text        NOT NULL CHECK (format IN ('json', 'cef')),
          settings          jsonb       NOT NULL,
          wrapped_token     bytea,
          paused            boolean     NOT NULL DEFAULT false,
          created_at        timestamptz NOT NULL DEFAULT now(),
          deleted_at        timestamptz,
          last_delivered_at timestamptz,
          last_error        text,
          last_error_at     timestamptz
        )`,
  `CREATE INDEX audit_feeds_tenant ON ${s}.audit_feeds (tenant_id) WHERE deleted_at IS NULL`,
  `GRANT SELECT, INSERT, UPDATE (paused, deleted_at, last_delivered_at, last_error, last_error_at) ON ${s}.audit_feeds TO ${app}`,
  `
        CREATE TABLE ${s}.audit_feed_cursors (
          feed_id     uuid        NOT NULL REFERENCES ${s}.audit_feeds (id),
          topic       text        NOT NULL,
          partition   integer     NOT NULL CHECK (partition >= 0),
          next_offset bigint      NOT NULL CHECK (next_offset >= 0),
          updated_at  timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (feed_id, topic, partition)
        )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.audit_feed_cursors TO ${app}`,
]);
