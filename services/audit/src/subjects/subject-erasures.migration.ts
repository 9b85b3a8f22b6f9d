import { sqlMigration } from '@palisade/postgres';

/**
 * The latest erasure of a data subject, read with its live key at ingest
 * (SubjectKeysRepository.liveKeys: an event produced before the erasure is chained
 * unreadable, not under the new key): an index of the erased keys by subject, newest
 * first, so that read is an index probe per subject, not a scan of the key table.
 */
export const subjectErasuresMigration = sqlMigration('AuditSubjectErasures1763860000000', (s) => [
  `CREATE INDEX audit_subject_keys_erased ON ${s}.audit_subject_keys (subject_id, erased_at DESC) WHERE erased_at IS NOT NULL`,
]);
