import { sqlMigration } from '@palisade/postgres';

/**
 * Sandboxes (read model of `sandbox-<id>`, kept in the transaction of its events) and
 * their executions: outcome, usage, and the output kept (capped) for the caller to read
 * again by execution id. Output is never in an event.
 */
export const sandboxesMigration = sqlMigration('SandboxSandboxes1764900000001', (s, app) => [
  `CREATE TABLE ${s}.sandboxes (
     tenant_id         text NOT NULL,
     sandbox_id        uuid NOT NULL,
     session_id        uuid NOT NULL,
     template          text NOT NULL,
     instance          text NOT NULL,
     limits            jsonb NOT NULL,
     status            text NOT NULL CHECK (status IN ('ready', 'stopped', 'deleted')),
     running_execution uuid,
     version           integer NOT NULL,
     created_at        timestamptz NOT NULL,
     updated_at        timestamptz NOT NULL,
     last_activity_at  timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, sandbox_id)
   )`,
  `CREATE INDEX sandboxes_session ON ${s}.sandboxes (tenant_id, session_id)`,
  `CREATE INDEX sandboxes_live ON ${s}.sandboxes (instance, last_activity_at) WHERE status = 'ready'`,
  `CREATE TABLE ${s}.sandbox_executions (
     tenant_id        text NOT NULL,
     sandbox_id       uuid NOT NULL,
     execution_id     uuid NOT NULL,
     program          text NOT NULL,
     status           text NOT NULL CHECK (status IN ('running', 'finished')),
     reason           text,
     exit_code        integer,
     signal           text,
     stdout           bytea,
     stderr           bytea,
     stdout_truncated boolean NOT NULL DEFAULT false,
     stderr_truncated boolean NOT NULL DEFAULT false,
     usage            jsonb,
     started_at       timestamptz NOT NULL,
     finished_at      timestamptz,
     PRIMARY KEY (tenant_id, execution_id)
   )`,
  `CREATE INDEX sandbox_executions_sandbox ON ${s}.sandbox_executions (tenant_id, sandbox_id, started_at)`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.sandboxes TO ${app}`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.sandbox_executions TO ${app}`,
]);

/**
 * Quotas: each sandbox's lifetime limit (`expires_at`, from its created event) and each
 * tenant's CPU-seconds per hour (kept with the exec_finished events), summed over the
 * quota's window.
 */
export const sandboxQuotasMigration = sqlMigration('SandboxQuotas1764900000002', (s, app) => [
  `ALTER TABLE ${s}.sandboxes ADD COLUMN expires_at timestamptz`,
  `CREATE INDEX sandboxes_expiring ON ${s}.sandboxes (instance, expires_at) WHERE status = 'ready'`,
  `CREATE INDEX sandboxes_tenant_ready ON ${s}.sandboxes (tenant_id) WHERE status = 'ready'`,
  `CREATE TABLE ${s}.sandbox_tenant_cpu (
     tenant_id   text NOT NULL,
     hour        timestamptz NOT NULL,
     cpu_seconds double precision NOT NULL,
     PRIMARY KEY (tenant_id, hour)
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.sandbox_tenant_cpu TO ${app}`,
]);
