import { sqlMigration } from '@palisade/postgres';

/**
 * Records that are in the chain but that the record index cannot hold as columns (a
 * year-0 `occurredAt`, a NUL byte or lone surrogate in an indexed field): one row each,
 * with why, so ingest goes on (README "Quarantined index rows"). The raw record value is
 * JSON text (its NULs escaped), which PostgreSQL stores. Derived like the index: the
 * application role may read, append and, for an index rebuild, delete. Also: the
 * index names the key that seals each record's personal data (`key_id`).
 */
export const indexQuarantineMigration = sqlMigration('AuditIndexQuarantine1763820000000', (s, app) => [
  `
        CREATE TABLE ${s}.audit_index_quarantine (
          topic          text        NOT NULL,
          partition      integer     NOT NULL CHECK (partition >= 0),
          seq            bigint      NOT NULL CHECK (seq > 0),
          kafka_offset   bigint      NOT NULL CHECK (kafka_offset >= 0),
          hash           char(64)    NOT NULL,
          event_id       uuid        NOT NULL,
          reasons        text[]      NOT NULL,
          value          text        NOT NULL,
          quarantined_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (topic, partition, seq),
          CONSTRAINT audit_index_quarantine_event_once UNIQUE (topic, event_id)
        )`,
  `GRANT SELECT, INSERT, DELETE ON ${s}.audit_index_quarantine TO ${app}`,
  // The key a record's personal data is sealed under: erasing a subject destroys every
  // key its records use, its tenant's shared "unknown subjects" key included.
  `ALTER TABLE ${s}.audit_records ADD COLUMN key_id uuid`,
  `CREATE INDEX audit_records_subject_key ON ${s}.audit_records (subject_id, key_id) WHERE key_id IS NOT NULL`,
]);
