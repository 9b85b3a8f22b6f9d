import { sqlMigration } from '@palisade/postgres';

/** Catalogs (read model of `llm-catalog-<tenant>`, kept in the transaction of its events): the folded providers, models and routes, and the stream version (ETag). */
export const catalogMigration = sqlMigration('LlmRouterCatalogs1764900000001', (s, app) => [
  `CREATE TABLE ${s}.catalogs (
     tenant_id  text PRIMARY KEY,
     state      jsonb NOT NULL,
     version    integer NOT NULL,
     updated_at timestamptz NOT NULL
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.catalogs TO ${app}`,
]);
