import type { EventEnvelope } from '@palisade/contracts';
import { streamName, toDomainEvent, type InlineProjection, type Transaction } from '@palisade/eventsourcing';
import { runStatement, sqlOf, type PgEventStore, type SqlStatement } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import type { SandboxLimits } from '../runtime/runtime.port';
import { SANDBOX_EVENT_TYPES, type ExecutionReason, type ExecutionUsage, type SandboxEvent } from './sandboxes.events';

export interface SandboxRow {
  tenantId: string;
  sandboxId: string;
  sessionId: string;
  template: string;
  /** The orchestrator instance (host) whose runtime holds it. */
  instance: string;
  limits: SandboxLimits;
  status: 'ready' | 'stopped' | 'deleted';
  runningExecution?: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  lastActivityAt: string;
  /** The lifetime limit (absent for sandboxes created before it). */
  expiresAt?: string;
}

export interface ExecutionRow {
  sandboxId: string;
  executionId: string;
  program: string;
  status: 'running' | 'finished';
  reason?: ExecutionReason;
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  usage?: ExecutionUsage;
  startedAt: string;
  finishedAt?: string;
}

export interface ExecutionOutput {
  executionId: string;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
}

/** A claim of CPU-seconds for one execution (`claimCpu`). */
export interface CpuClaim {
  tenantId: string;
  executionId: string;
  instance: string;
  /** The claiming process (random at its start): a restart of the instance drops only the grants of processes that are gone. */
  boot: string;
  /** The tenant's CPU-seconds quota in force. */
  quota: number;
  /** The start of the quota's window. */
  since: Date;
  /** At most this much (the execution's worst case: CPU quota × timeout). */
  want: number;
  /** This long after the claim (PostgreSQL's clock, the one the expiry is compared with), the grant no longer counts (its instance died without restarting). */
  ttlSeconds: number;
}

interface Row {
  tenant_id: string;
  sandbox_id: string;
  session_id: string;
  template: string;
  instance: string;
  limits: SandboxLimits;
  status: SandboxRow['status'];
  running_execution: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  last_activity_at: Date;
  expires_at: Date | null;
}

interface ExecRow {
  sandbox_id: string;
  execution_id: string;
  program: string;
  status: ExecutionRow['status'];
  reason: ExecutionReason | null;
  exit_code: number | null;
  signal: string | null;
  stdout: Buffer | null;
  stderr: Buffer | null;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  usage: ExecutionUsage | null;
  started_at: Date;
  finished_at: Date | null;
}

const COLUMNS = 'tenant_id, sandbox_id, session_id, template, instance, limits, status, running_execution, version, created_at, updated_at, last_activity_at, expires_at';

function rowOf(r: Row): SandboxRow {
  const row: SandboxRow = {
    tenantId: r.tenant_id,
    sandboxId: r.sandbox_id,
    sessionId: r.session_id,
    template: r.template,
    instance: r.instance,
    limits: r.limits,
    status: r.status,
    version: r.version,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    lastActivityAt: r.last_activity_at.toISOString(),
  };
  if (r.running_execution) row.runningExecution = r.running_execution;
  if (r.expires_at) row.expiresAt = r.expires_at.toISOString();
  return row;
}

function execOf(r: ExecRow): ExecutionRow {
  const row: ExecutionRow = {
    sandboxId: r.sandbox_id,
    executionId: r.execution_id,
    program: r.program,
    status: r.status,
    exitCode: r.exit_code,
    signal: r.signal,
    stdout: r.stdout ?? Buffer.alloc(0),
    stderr: r.stderr ?? Buffer.alloc(0),
    stdoutTruncated: r.stdout_truncated,
    stderrTruncated: r.stderr_truncated,
    startedAt: r.started_at.toISOString(),
  };
  if (r.reason) row.reason = r.reason;
  if (r.usage) row.usage = r.usage;
  if (r.finished_at) row.finishedAt = r.finished_at.toISOString();
  return row;
}

/** The only SQL of the sandboxes context: `sandboxes` and `sandbox_executions`, kept inline with the events. */
export class SandboxesRepository {
  /** `store`: the service's event store, for `commit` (the row and the events in one statement). */
  constructor(
    private readonly dataSource: Pick<DataSource, 'query' | 'createQueryRunner'>,
    private readonly store?: Pick<PgEventStore, 'commitToStream'>,
  ) {}

  async sandbox(tenantId: string, sandboxId: string): Promise<SandboxRow | undefined> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM sandboxes WHERE tenant_id = $1 AND sandbox_id = $2`, [tenantId, sandboxId]);
    return rows[0] && rowOf(rows[0]);
  }

  /**
   * The sandbox's row, locked for the transaction: what its commands decide on instead of
   * its stream (the projection below keeps the row at the stream's version in the same
   * transactions; the stream grows by three events per execution, the row does not).
   */
  async lockedSandbox(tx: Transaction, tenantId: string, sandboxId: string): Promise<SandboxRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM sandboxes WHERE tenant_id = $1 AND sandbox_id = $2 FOR UPDATE`, [tenantId, sandboxId]);
    return rows[0] && rowOf(rows[0]);
  }

  /** Whose a sandbox is, by its id alone: for the egress proxy, which knows a sandbox by its network link (never by a caller's claim). */
  async ownerOf(sandboxId: string): Promise<{ tenantId: string; sessionId: string } | undefined> {
    const rows: Array<{ tenant_id: string; session_id: string }> = await this.dataSource.query(`SELECT tenant_id, session_id FROM sandboxes WHERE sandbox_id = $1 AND status = 'ready'`, [sandboxId]);
    return rows[0] && { tenantId: rows[0].tenant_id, sessionId: rows[0].session_id };
  }

  async sandboxesOf(tenantId: string, sessionId: string): Promise<SandboxRow[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM sandboxes WHERE tenant_id = $1 AND session_id = $2 AND status <> 'deleted' ORDER BY sandbox_id DESC LIMIT 500`, [
      tenantId,
      sessionId,
    ]);
    return rows.map(rowOf);
  }

  /** The instance's sandboxes of every tenant that are ready or have an execution running (start-up reconciliation). */
  async liveSandboxes(instance: string): Promise<SandboxRow[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM sandboxes WHERE instance = $1 AND (status = 'ready' OR running_execution IS NOT NULL)`, [instance]);
    return rows.map(rowOf);
  }

  /** Ready sandboxes with nothing running and no activity since `before`. */
  async idleSince(instance: string, before: Date, limit = 100): Promise<SandboxRow[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM sandboxes WHERE instance = $1 AND status = 'ready' AND running_execution IS NULL AND last_activity_at < $2 ORDER BY last_activity_at LIMIT $3`,
      [instance, before, limit],
    );
    return rows.map(rowOf);
  }

  /** Ready sandboxes of the instance past their lifetime limit. */
  async expiredBy(instance: string, at: Date, limit = 100): Promise<SandboxRow[]> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM sandboxes WHERE instance = $1 AND status = 'ready' AND expires_at <= $2 ORDER BY expires_at LIMIT $3`, [instance, at, limit]);
    return rows.map(rowOf);
  }

  /** How many sandboxes of the tenant are ready (on every instance). */
  async readyCount(tenantId: string): Promise<number> {
    const rows: Array<{ n: number }> = await this.dataSource.query(`SELECT count(*)::int AS n FROM sandboxes WHERE tenant_id = $1 AND status = 'ready'`, [tenantId]);
    return rows[0]?.n ?? 0;
  }

  /**
   * In the transaction of a sandbox's created event (after its projection): serialises the
   * tenant's creations and counts its ready sandboxes, the new one included, so two
   * concurrent creations never both take the last place.
   */
  async readyCountLocked(tx: Transaction, tenantId: string): Promise<number> {
    const sql = sqlOf(tx);
    await sql.query(`SELECT pg_advisory_xact_lock(hashtextextended('sandbox-quota:' || $1, 0))`, [tenantId]);
    const rows: Array<{ n: number }> = await sql.query(`SELECT count(*)::int AS n FROM sandboxes WHERE tenant_id = $1 AND status = 'ready'`, [tenantId]);
    return rows[0]?.n ?? 0;
  }

  /** CPU-seconds the tenant's executions used in the hours from `since` on. */
  async cpuSecondsSince(tenantId: string, since: Date): Promise<number> {
    const rows: Array<{ s: number | null }> = await this.dataSource.query(`SELECT sum(cpu_seconds) AS s FROM sandbox_tenant_cpu WHERE tenant_id = $1 AND hour >= date_trunc('hour', $2::timestamptz)`, [tenantId, since]);
    return Number(rows[0]?.s ?? 0);
  }

  /**
   * Claims CPU-seconds for an execution, atomically across every instance (`sandbox_claim_cpu`,
   * in the migration): the tenant's `quota` less what it used since `since` and what its
   * running executions hold, at most `want`; `granted` undefined when nothing is left.
   */
  async claimCpu(claim: CpuClaim): Promise<{ granted?: number; used: number; held: number }> {
    const [row]: Array<{ granted: number | null; used: number; held: number }> = await this.dataSource.query(`SELECT granted, used, held FROM sandbox_claim_cpu($1, $2, $3, $4, $5, $6, $7, $8)`, [
      claim.tenantId,
      claim.executionId,
      claim.instance,
      claim.boot,
      claim.quota,
      claim.since,
      claim.want,
      claim.ttlSeconds,
    ]);
    return { ...(row.granted === null ? {} : { granted: Number(row.granted) }), used: Number(row.used), held: Number(row.held) };
  }

  /** Releases the grant of an execution that never started (one that did leaves with its exec_finished). */
  async releaseCpu(tenantId: string, executionId: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM sandbox_cpu_grants WHERE tenant_id = $1 AND execution_id = $2`, [tenantId, executionId]);
  }

  /**
   * Marks this process alive for as long as it runs: a session advisory lock on its boot, on
   * a connection of its own (another process's restart drops only the grants of boots whose
   * lock it can take). Returns its release.
   */
  async holdBoot(boot: string): Promise<() => Promise<void>> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query(`SELECT pg_advisory_lock(hashtextextended('sandbox-boot:' || $1, 0))`, [boot]);
    } catch (error) {
      await runner.release();
      throw error;
    }
    return async () => {
      await runner.query(`SELECT pg_advisory_unlock(hashtextextended('sandbox-boot:' || $1, 0))`, [boot]).catch(() => undefined);
      await runner.release();
    };
  }

  /** The executions of `instance` whose grants a live process other than `boot` holds (a rolling restart's overlap, or two processes under one name): theirs, not lost. */
  async liveElsewhere(instance: string, boot: string): Promise<Set<string>> {
    const rows: Array<{ execution_id: string }> = await this.dataSource.query(
      `SELECT execution_id FROM sandbox_cpu_grants WHERE instance = $1 AND boot <> $2 AND boot <> '' AND NOT pg_try_advisory_xact_lock(hashtextextended('sandbox-boot:' || boot, 0))`,
      [instance, boot],
    );
    return new Set(rows.map((r) => r.execution_id));
  }

  /** At a process's start: the grants of `instance` held by processes that are gone (what they ran is over); a live one's stay. */
  async releaseCpuOf(instance: string, boot: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM sandbox_cpu_grants WHERE instance = $1 AND boot <> $2 AND pg_try_advisory_xact_lock(hashtextextended('sandbox-boot:' || boot, 0))`, [instance, boot]);
  }

  async execution(tenantId: string, sandboxId: string, executionId: string): Promise<ExecutionRow | undefined> {
    const rows: ExecRow[] = await this.dataSource.query(
      `SELECT sandbox_id, execution_id, program, status, reason, exit_code, signal, stdout, stderr, stdout_truncated, stderr_truncated, usage, started_at, finished_at
         FROM sandbox_executions WHERE tenant_id = $1 AND sandbox_id = $2 AND execution_id = $3`,
      [tenantId, sandboxId, executionId],
    );
    return rows[0] && execOf(rows[0]);
  }

  /** The output of a finished execution, in the transaction of its exec_finished event. */
  async storeOutput(tx: Transaction, tenantId: string, output: ExecutionOutput): Promise<void> {
    await sqlOf(tx).query(
      `UPDATE sandbox_executions SET stdout = $3, stderr = $4, stdout_truncated = $5, stderr_truncated = $6 WHERE tenant_id = $1 AND execution_id = $2`,
      [tenantId, output.executionId, output.stdout, output.stderr, output.stdoutTruncated, output.stderrTruncated],
    );
  }

  /**
   * A sandbox's events decided on its row (read at `version`, not locked) committed with
   * their rows in one statement, one round trip (`PgEventStore.commitToStream`): the row is
   * updated first, only if still at `version` (its lock taken before the events', as the
   * locked path takes it), then the events and the other rows. ConcurrencyError when the
   * row or the stream moved: nothing is stored, the caller decides again.
   */
  async commit(events: readonly EventEnvelope[], version: number): Promise<void> {
    if (!this.store) throw new Error('SandboxesRepository: commit needs the event store');
    const { row, others } = statementsOf(events, version + events.length);
    const guarded: SqlStatement = (p) => `${row(p)} AND version = ${p(version)} RETURNING 1`;
    await this.store.commitToStream(streamName('sandbox', (events[0].data as { sandboxId: string }).sandboxId), events, version, guarded, others);
  }

  /**
   * Keeps `sandboxes` and `sandbox_executions` in the transaction of the sandbox's events;
   * the sandbox's row changes once per append (its columns, its version), not once per
   * event and again for the version: an execution's start and end are each in a transaction
   * the caller waits for.
   */
  readonly projection: InlineProjection = {
    name: 'sandboxes',
    handles: SANDBOX_EVENT_TYPES,
    apply: async (tx: Transaction, events: readonly EventEnvelope[], version: number) => {
      const { row, others } = statementsOf(events, version);
      for (const statement of others) await runStatement(tx, statement);
      await runStatement(tx, row);
    },
  };
}

/**
 * The statements that keep the rows of an append of a sandbox's events at `version`: the
 * sandbox's row (its columns changed and version, one UPDATE, WHERE left open for a guard)
 * and the others (its executions, the tenant's CPU). None depends on another's write, so
 * they run one by one in a transaction or as parts of one statement.
 */
function statementsOf(events: readonly EventEnvelope[], version: number): { row: SqlStatement; others: SqlStatement[] } {
  const changed: RowChanges = {};
  const others: SqlStatement[] = [];
  for (const envelope of events) {
    const event = toDomainEvent<SandboxEvent>(envelope);
    const tenantId = envelope.tenantId;
    const sandboxId = event.data.sandboxId;
    const at = envelope.occurredAt;
    switch (event.type) {
      case 'sandbox-orchestrator.sandbox.created': {
        const d = event.data;
        others.push(
          (p) => `INSERT INTO sandboxes (tenant_id, sandbox_id, session_id, template, instance, limits, status, version, created_at, updated_at, last_activity_at, expires_at)
                  VALUES (${p(tenantId)}, ${p(sandboxId)}, ${p(d.sessionId)}, ${p(d.template)}, ${p(d.instance)}, ${p(JSON.stringify(d.limits))}, 'ready', ${p(version)}, ${p(at)}, ${p(at)}, ${p(at)}, ${p(d.expiresAt ?? null)})`,
        );
        break;
      }
      case 'sandbox-orchestrator.sandbox.exec_started': {
        const d = event.data;
        Object.assign(changed, { running_execution: d.executionId, last_activity_at: at });
        others.push((p) => `INSERT INTO sandbox_executions (tenant_id, sandbox_id, execution_id, program, status, started_at) VALUES (${p(tenantId)}, ${p(sandboxId)}, ${p(d.executionId)}, ${p(d.program)}, 'running', ${p(at)})`);
        break;
      }
      case 'sandbox-orchestrator.sandbox.exec_finished': {
        const d = event.data;
        Object.assign(changed, { running_execution: null, last_activity_at: at });
        others.push(
          (p) =>
            `UPDATE sandbox_executions SET status = 'finished', reason = ${p(d.reason)}, exit_code = ${p(d.exitCode)}, signal = ${p(d.signal)}, usage = ${p(JSON.stringify(d.usage))}, finished_at = ${p(at)}
              WHERE tenant_id = ${p(tenantId)} AND execution_id = ${p(d.executionId)}`,
        );
        // its grant leaves with its usage's arrival (one commit: a claim sees both or neither)
        others.push((p) => `DELETE FROM sandbox_cpu_grants WHERE tenant_id = ${p(tenantId)} AND execution_id = ${p(d.executionId)}`);
        if (d.usage.cpuSeconds > 0) {
          others.push(
            (p) => `INSERT INTO sandbox_tenant_cpu (tenant_id, hour, cpu_seconds) VALUES (${p(tenantId)}, date_trunc('hour', ${p(at)}::timestamptz), ${p(d.usage.cpuSeconds)})
                    ON CONFLICT (tenant_id, hour) DO UPDATE SET cpu_seconds = sandbox_tenant_cpu.cpu_seconds + EXCLUDED.cpu_seconds`,
          );
        }
        break;
      }
      case 'sandbox-orchestrator.sandbox.stopped':
        changed.status = 'stopped';
        break;
      case 'sandbox-orchestrator.sandbox.deleted':
        changed.status = 'deleted';
        break;
      case 'sandbox-orchestrator.sandbox.usage_recorded':
      case 'sandbox-orchestrator.usage.recorded':
      case 'sandbox-orchestrator.sandbox.exec_refused':
        break;
      case 'sandbox-orchestrator.sandbox.file_uploaded':
      case 'sandbox-orchestrator.sandbox.file_downloaded':
        changed.last_activity_at = at;
        break;
    }
  }
  // the columns changed (a fixed set of names, never input), then the version, in one statement
  const columns = Object.keys(changed) as Array<keyof RowChanges>;
  const [first, last] = [events[0], events[events.length - 1]];
  const row: SqlStatement = (p) =>
    `UPDATE sandboxes SET ${[...columns.map((c) => `${c} = ${p(changed[c])}`), `version = ${p(version)}`, `updated_at = ${p(last.occurredAt)}`].join(', ')}
      WHERE tenant_id = ${p(first.tenantId)} AND sandbox_id = ${p((first.data as { sandboxId: string }).sandboxId)}`;
  return { row, others };
}

/** What an append changes of a sandbox's row besides its version (the last event's value wins). */
interface RowChanges {
  running_execution?: string | null;
  last_activity_at?: string;
  status?: 'stopped' | 'deleted';
}
