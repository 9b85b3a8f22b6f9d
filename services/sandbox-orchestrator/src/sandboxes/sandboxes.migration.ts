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

/**
 * The CPU-seconds granted to running executions, shared by every orchestrator instance of
 * the database (a tenant on k instances never passes its remainder: before, each instance
 * held its grants in memory). `sandbox_claim_cpu` claims one atomically: under the tenant's
 * advisory lock (claims of one tenant one after another, whatever the instance), it reads
 * what the tenant used in the window and what its running executions hold in ONE statement
 * (one snapshot: an end commits its usage and removes its grant together, so a claim sees
 * both or neither), drops the tenant's expired grants (an instance that died and never came
 * back), and inserts the grant if anything is left. The grant leaves with the
 * execution's `exec_finished` (the projection), or by `DELETE` when nothing started, or at
 * the instance's restart. The claim's commit is asynchronous (`synchronous_commit` off for
 * it alone): nothing runs before `exec_started`, a durable commit made after it, whose WAL
 * flush includes the claim; a claim lost to a crash of PostgreSQL before then only refused
 * another claim for a while (fail closed).
 */
export const sandboxCpuGrantsMigration = sqlMigration('SandboxCpuGrants1765100000001', (s, app) => [
  `CREATE TABLE ${s}.sandbox_cpu_grants (
     tenant_id    text NOT NULL,
     execution_id uuid NOT NULL,
     instance     text NOT NULL,
     cpu_seconds  double precision NOT NULL CHECK (cpu_seconds > 0),
     expires_at   timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, execution_id)
   )`,
  `CREATE INDEX sandbox_cpu_grants_instance ON ${s}.sandbox_cpu_grants (instance)`,
  `CREATE FUNCTION ${s}.sandbox_claim_cpu(p_tenant text, p_execution uuid, p_instance text, p_quota double precision, p_since timestamptz, p_want double precision, p_expires timestamptz,
                                          OUT granted double precision, OUT used double precision, OUT held double precision)
   LANGUAGE plpgsql VOLATILE AS $$
   BEGIN
     PERFORM pg_advisory_xact_lock(hashtextextended('sandbox-cpu:' || p_tenant, 0));
     PERFORM set_config('synchronous_commit', 'off', true);
     DELETE FROM ${s}.sandbox_cpu_grants WHERE tenant_id = p_tenant AND expires_at < now();
     SELECT (SELECT coalesce(sum(c.cpu_seconds), 0) FROM ${s}.sandbox_tenant_cpu c WHERE c.tenant_id = p_tenant AND c.hour >= date_trunc('hour', p_since)),
            (SELECT coalesce(sum(g.cpu_seconds), 0) FROM ${s}.sandbox_cpu_grants g WHERE g.tenant_id = p_tenant)
       INTO used, held;
     IF p_quota - used - held > 0 THEN
       granted := least(p_quota - used - held, p_want);
       INSERT INTO ${s}.sandbox_cpu_grants (tenant_id, execution_id, instance, cpu_seconds, expires_at) VALUES (p_tenant, p_execution, p_instance, granted, p_expires);
     END IF;
   END $$`,
  `GRANT SELECT, INSERT, DELETE ON ${s}.sandbox_cpu_grants TO ${app}`,
  `GRANT EXECUTE ON FUNCTION ${s}.sandbox_claim_cpu(text, uuid, text, double precision, timestamptz, double precision, timestamptz) TO ${app}`,
]);

/**
 * Each grant names the process that claimed it (`boot`, random at the process's start),
 * besides its instance: a restart drops only the grants of processes that are gone, so
 * two processes under one instance name (a rolling restart's overlap, or two left at the
 * default) do not drop each other's live grants. A process is alive while it holds the
 * session advisory lock on its boot (`SandboxesRepository.holdBoot`). The claim takes the
 * grant's time to live and adds it to PostgreSQL's `now()`, the clock the expiry is
 * compared with (the app's clock, skewed past the grace, expired live grants early). The
 * previous `sandbox_claim_cpu` stays for a process of the previous build during a rolling
 * restart (its grants have no boot: dropped by any restart of their instance, as before).
 */
export const sandboxCpuGrantBootsMigration = sqlMigration('SandboxCpuGrantBoots1765200000001', (s, app) => [
  `ALTER TABLE ${s}.sandbox_cpu_grants ADD COLUMN boot text NOT NULL DEFAULT ''`,
  `CREATE FUNCTION ${s}.sandbox_claim_cpu(p_tenant text, p_execution uuid, p_instance text, p_boot text, p_quota double precision, p_since timestamptz, p_want double precision, p_ttl_seconds double precision,
                                          OUT granted double precision, OUT used double precision, OUT held double precision)
   LANGUAGE plpgsql VOLATILE AS $$
   BEGIN
     PERFORM pg_advisory_xact_lock(hashtextextended('sandbox-cpu:' || p_tenant, 0));
     PERFORM set_config('synchronous_commit', 'off', true);
     DELETE FROM ${s}.sandbox_cpu_grants WHERE tenant_id = p_tenant AND expires_at < now();
     SELECT (SELECT coalesce(sum(c.cpu_seconds), 0) FROM ${s}.sandbox_tenant_cpu c WHERE c.tenant_id = p_tenant AND c.hour >= date_trunc('hour', p_since)),
            (SELECT coalesce(sum(g.cpu_seconds), 0) FROM ${s}.sandbox_cpu_grants g WHERE g.tenant_id = p_tenant)
       INTO used, held;
     IF p_quota - used - held > 0 THEN
       granted := least(p_quota - used - held, p_want);
       INSERT INTO ${s}.sandbox_cpu_grants (tenant_id, execution_id, instance, boot, cpu_seconds, expires_at)
         VALUES (p_tenant, p_execution, p_instance, p_boot, granted, now() + make_interval(secs => p_ttl_seconds));
     END IF;
   END $$`,
  `GRANT EXECUTE ON FUNCTION ${s}.sandbox_claim_cpu(text, uuid, text, text, double precision, timestamptz, double precision, double precision) TO ${app}`,
]);
