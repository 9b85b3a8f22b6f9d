import { sqlMigration } from '@palisade/postgres';

/**
 * The record index: one row per record of the audit topic (the raw record value
 * included, for exports), so queries and exactly-once de-duplication need not scan
 * Kafka. The topic stays the source of truth: the index is filled from what Kafka
 * committed and can be rebuilt from the topic (README, "Exactly once"). The
 * application role may only read and append.
 */
export const ingestMigration = sqlMigration('AuditIngest1763780000000', (s, app) => [
  `
        CREATE TABLE ${s}.audit_records (
          topic         text        NOT NULL,
          partition     integer     NOT NULL CHECK (partition >= 0),
          seq           bigint      NOT NULL CHECK (seq > 0),
          kafka_offset  bigint      NOT NULL CHECK (kafka_offset >= 0),
          hash          char(64)    NOT NULL,
          event_id      uuid        NOT NULL,
          event_type    text        NOT NULL,
          action_class  text        NOT NULL,
          tenant_id     text        NOT NULL,
          actor_type    text        NOT NULL,
          actor_id      text        NOT NULL,
          subject_id    text,
          occurred_at   timestamptz NOT NULL,
          recorded_at   timestamptz NOT NULL,
          value         text        NOT NULL,
          PRIMARY KEY (topic, partition, seq),
          CONSTRAINT audit_records_event_once UNIQUE (topic, event_id)
        )`,
  `CREATE INDEX audit_records_tenant_time ON ${s}.audit_records (topic, tenant_id, occurred_at, event_id)`,
  `CREATE INDEX audit_records_time ON ${s}.audit_records (topic, occurred_at, event_id)`,
  `CREATE INDEX audit_records_offset ON ${s}.audit_records (topic, partition, kafka_offset)`,
  `CREATE INDEX audit_records_subject ON ${s}.audit_records (subject_id) WHERE subject_id IS NOT NULL`,
  `GRANT SELECT, INSERT ON ${s}.audit_records TO ${app}`,
  `
        CREATE TABLE ${s}.audit_kek_check (
          id          smallint    PRIMARY KEY CHECK (id = 1),
          check_value bytea       NOT NULL,
          created_at  timestamptz NOT NULL DEFAULT now()
        )`,
  `GRANT SELECT, INSERT ON ${s}.audit_kek_check TO ${app}`,
  `
        CREATE TABLE ${s}.audit_signing_keys (
          kid             text        PRIMARY KEY,
          public_jwk      jsonb       NOT NULL,
          wrapped_private bytea       NOT NULL,
          created_at      timestamptz NOT NULL DEFAULT now(),
          retired_at      timestamptz
        )`,
  `CREATE UNIQUE INDEX audit_signing_keys_one_active ON ${s}.audit_signing_keys ((true)) WHERE retired_at IS NULL`,
  `GRANT SELECT, INSERT, UPDATE (retired_at) ON ${s}.audit_signing_keys TO ${app}`,
  `
        CREATE TABLE ${s}.audit_subject_keys (
          key_id      uuid        PRIMARY KEY,
          subject_id  text        NOT NULL,
          wrapped_key bytea,
          created_at  timestamptz NOT NULL DEFAULT now(),
          erased_at   timestamptz,
          CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
        )`,
  `CREATE UNIQUE INDEX audit_subject_keys_live ON ${s}.audit_subject_keys (subject_id) WHERE erased_at IS NULL`,
  `GRANT SELECT, INSERT, UPDATE (wrapped_key, erased_at) ON ${s}.audit_subject_keys TO ${app}`,
]);
