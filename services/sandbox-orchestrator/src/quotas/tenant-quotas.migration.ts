import { sqlMigration } from '@palisade/postgres';

/**
 * A tenant's own sandbox quotas (read model of `tenant_quotas-<tenant>`, kept in the
 * transaction of its events) and the stream version (ETag). Removed: the row stays
 * (status `removed`) so that its version goes on.
 */
export const tenantQuotasMigration = sqlMigration('SandboxTenantQuotas1765000000001', (s, app) => [
  `CREATE TABLE ${s}.sandbox_tenant_quotas (
     tenant_id     text PRIMARY KEY,
     max_sandboxes integer NOT NULL,
     cpu_seconds   bigint NOT NULL,
     status        text NOT NULL CHECK (status IN ('set', 'removed')),
     version       integer NOT NULL,
     updated_at    timestamptz NOT NULL
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.sandbox_tenant_quotas TO ${app}`,
]);
