import { sqlMigration } from '@palisade/postgres';

/**
 * The record index's (topic, partition, kafka_offset) index served no query: a record's
 * offset is looked up by its seq (the primary key), the heads and ranges too; it cost
 * PostgreSQL 1.5–3 µs of CPU per indexed row (issue 17, README "the record index by COPY").
 */
export const indexDropOffsetMigration = sqlMigration('AuditIndexDropOffset1763850000000', (s) => [`DROP INDEX IF EXISTS ${s}.audit_records_offset`]);
