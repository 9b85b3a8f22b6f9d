import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ident } from './data-source';

/**
 * A migration as SQL statements, the one way every service writes one: `statements`
 * receives the schema and the application role already quoted (`ident`), and returns
 * the statements to run in order. Migrations only go forward: `down` refuses.
 */
export function sqlMigration(name: string, statements: (schema: string, appRole: string) => string[]) {
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
