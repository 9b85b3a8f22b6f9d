import { sqlMigration } from '@palisade/postgres';

/**
 * Rebuilding the record index from the topic (POST /v1/audit/index/rebuild) empties the
 * topic's rows first: the application role may delete index rows (derived data; the
 * topic, which it cannot delete from, stays the source of truth).
 */
export const indexRebuildMigration = sqlMigration('AuditIndexRebuild1763790000000', (s, app) => [
  `GRANT DELETE ON ${s}.audit_records TO ${app}`,
]);
