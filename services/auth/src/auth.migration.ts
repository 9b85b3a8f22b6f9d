import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ident } from '@palisade/postgres';

/** A migration as SQL statements, with `${s}` (schema) and `${app}` (application role) already filled in. */
export function sqlMigration(name: string, statements: (s: string, app: string) => string[]) {
  return (schema: string, appRole: string): new () => MigrationInterface =>
    class implements MigrationInterface {
      name = name;
      async up(q: QueryRunner): Promise<void> {
        for (const statement of statements(ident(schema), ident(appRole))) await q.query(statement);
      }
      async down(): Promise<void> {
        throw new Error(`${name} is not reversible`);
      }
    };
}
