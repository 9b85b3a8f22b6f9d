import { sqlMigration } from '@palisade/postgres';

/** Read model of tenants (projection of auth.tenant.* events). */
export const tenantsMigration = sqlMigration('AuthTenants1764000000001', (s, app) => [
  `CREATE TABLE ${s}.tenants (
     id              text PRIMARY KEY,
     name            text NOT NULL,
     password_policy jsonb NOT NULL,
     mfa_required    boolean NOT NULL,
     version         integer NOT NULL
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.tenants TO ${app}`,
]);
