import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ident } from '@palisade/postgres';

/**
 * Rebuilding the record index from the topic (POST /v1/audit/index/rebuild) empties the
 * topic's rows first: the application role may delete index rows (derived data; the
 * topic, which it cannot delete from, stays the source of truth).
 */
export function indexRebuildMigration(schema: string, appRole: string): new () => MigrationInterface {
  const s = ident(schema);
  const app = ident(appRole);
  return class AuditIndexRebuild1763790000000 implements MigrationInterface {
    name = 'AuditIndexRebuild1763790000000';

    async up(q: QueryRunner): Promise<void> {
      await q.query(`GRANT DELETE ON ${s}.audit_records TO ${app}`);
    }

    async down(q: QueryRunner): Promise<void> {
      await q.query(`REVOKE DELETE ON ${s}.audit_records FROM ${app}`);
    }
  };
}
