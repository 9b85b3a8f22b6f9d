import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ident } from '@palisade/postgres';

/** Syslog feeds may present a client certificate (mutual TLS); its private key is stored only wrapped by the KEK. */
export function feedsClientKeyMigration(schema: string): new () => MigrationInterface {
  const s = ident(schema);
  return class AuditFeedsClientKey1763810000000 implements MigrationInterface {
    name = 'AuditFeedsClientKey1763810000000';

    async up(q: QueryRunner): Promise<void> {
      // Table-level SELECT and INSERT of the application role cover the new column.
      await q.query(`ALTER TABLE ${s}.audit_feeds ADD COLUMN wrapped_client_key bytea`);
    }

    async down(q: QueryRunner): Promise<void> {
      await q.query(`ALTER TABLE ${s}.audit_feeds DROP COLUMN wrapped_client_key`);
    }
  };
}
