import { PalisadeError, validateForPublish, type EventEnvelope } from '@palisade/contracts';
import { ident, pgPoolOf } from '@palisade/postgres';
import * as pg from 'pg';
import type { DataSource } from 'typeorm';
import type { Level, Period } from '../budgets/budgets.events';
import type { Account, Hold, HoldKind, HoldStatus, LedgerAnswer, ReleaseAnswer, ReserveAnswer, SettleAnswer } from './ledger.decider';
import type { HeldAccount } from './ledger.events';

type Row = Record<string, unknown>;

/** A budget as the ledger needs it to find (or open) the account of the current period. */
export interface BudgetRow {
  budgetId: string;
  tenantId: string;
  level: Level;
  subjectId: string;
  limit: bigint;
  period: Period;
  timeZone: string;
  hard: boolean;
  thresholds: number[];
}

/** An account to open when missing: a budget and the period window it is for. */
export interface PeriodToOpen {
  budget: BudgetRow;
  start: Date;
  end: Date | null;
}

/** An event to append, on its stream at its version (the stream's next). */
export interface StreamEvent {
  streamId: string;
  version: number;
  event: EventEnvelope;
  /** Appended only if its stream has no event at that version yet (a threshold: recorded once); otherwise a conflict fails the batch. */
  once?: boolean;
}

/** A usage line: one per settled request and source (append-only). */
export interface UsageLine {
  eventId: string;
  tenantId: string;
  requestId: string;
  source: string;
  agentId: string;
  teamId: string | null;
  model: string | null;
  posted: bigint;
  actual: bigint;
  overrun: bigint;
  usage: unknown;
  occurredAt: Date;
  /** 0: the request's usage (counted as a request in reports); higher: the correction to that revision (the amounts are the differences). */
  revision: number;
}

export interface LedgerWrite {
  /** Holds of request ids the batch found no row for: inserted (another instance's insert of the same id meets the primary key, and the batch is decided again). */
  newHolds: Hold[];
  /** Holds the batch found (locked, or remembered), each written only if its row is still at `before` (its version then). */
  changedHolds: Array<{ hold: Hold; before: number; beforeAmount: bigint }>;
  /** Accounts the batch decided on, each written only if its row is still as `before` (posted, pending, limit, hard, thresholds). */
  accounts: Array<{ after: Account; before: Account }>;
  events: StreamEvent[];
  usage: UsageLine[];
}

/** SQLSTATE of `ledger_expect`: a row the batch was decided on had changed (ledger.migration.ts). */
export const STALE_ROWS = '40L01';

interface PgClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: Row[] } | Array<{ rows: Row[] }>>;
  release(destroy?: boolean): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}
interface PgPool {
  connect(): Promise<PgClient>;
}

const SERIALIZATION_CODES = new Set(['40001', '40P01']);

/**
 * What opens a ledger transaction, in the message of its first statement. Nested loops
 * only: every join of the ledger's statements pairs a batch's keys (tens, hundreds) with
 * a table that grows with history (an account per budget and period, a hold per request),
 * where one primary-key probe per key is the plan. The planner guesses 100 rows for each
 * `jsonb_to_recordset` and `jsonb_array_elements` and hashes a sequential scan of all of
 * `budget_periods` instead: with 30 days of agents' day periods (30,000 rows) PostgreSQL's
 * CPU per reserve and settle pair doubled (benchmark, README "Performance").
 */
const OPENING = ['BEGIN', 'SET LOCAL enable_hashjoin = off', 'SET LOCAL enable_mergejoin = off'];

/**
 * A ledger transaction: its statements, the first of which also begins it and the one
 * marked `commit` also commits it, in the same round trip.
 */
export interface LedgerTransaction {
  query(sql: string, params: readonly unknown[], options?: { commit?: boolean }): Promise<Row[]>;
}

/** node-postgres's own conversion of a parameter to its text form (arrays, dates, JSON), as it sends it. */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;

/**
 * The statement with its `$n` parameters written in as literals — node-postgres's text form
 * of each value (`prepareValue`) quoted as its `escapeLiteral` does (`quoteLiteral`) — so
 * that it can travel in one simple-protocol message with the BEGIN or COMMIT beside it.
 * The ledger's statements have no other `$` in them.
 */
export function inlineParameters(sql: string, params: readonly unknown[]): string {
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const i = Number(n) - 1;
    if (i >= params.length) throw new Error(`statement parameter $${n} has no value`);
    const value = prepareValue(params[i]);
    return value === null || value === undefined ? 'NULL' : quoteLiteral(String(value));
  });
}

/**
 * `pg.escapeLiteral`'s output (quotes doubled; with a backslash, backslashes doubled and
 * the E'' form), built by native replaces: its loop appends one character at a time,
 * which for a batch's hundred-odd kilobytes of parameters cost more of the lane's time
 * than PostgreSQL's parsing of them (and left a string that had to be flattened to be sent).
 */
export function quoteLiteral(text: string): string {
  const quoted = `'${text.replaceAll("'", "''")}'`;
  return text.includes('\\') ? ` E${quoted.replaceAll('\\', '\\\\')}` : quoted;
}

/**
 * The ledger's SQL: budgets, their period accounts, holds, usage lines and the events of
 * a batch of decisions. Locks are always taken in one order: the holds found (by tenant and
 * request id), then accounts by (level tenant→team→user→agent, budget id, period), then the
 * keys of new holds (an insert of a request id another transaction inserted waits for it, as
 * for a lock), so two transactions never wait on each other in a cycle.
 */
export class LedgerRepository {
  private readonly t: { budgets: string; periods: string; holds: string; write: string };

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
  ) {
    const s = ident(schema);
    this.t = { budgets: `${s}.budgets`, periods: `${s}.budget_periods`, holds: `${s}.holds`, write: `${s}.ledger_write` };
  }

  /**
   * Runs `work` in one transaction; a deadlock, a serialization failure or a request id
   * inserted meanwhile by another instance (unique violation on holds) runs it again.
   */
  async inTransaction<T>(work: (tx: LedgerTransaction) => Promise<T>, attempts = 5): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transaction(work);
      } catch (error) {
        const e = error as { code?: string; constraint?: string };
        const retry = SERIALIZATION_CODES.has(e.code ?? '') || heldMeanwhile(e);
        if (!retry || attempt >= attempts) throw mapError(error);
      }
    }
  }

  /**
   * BEGIN … COMMIT on a connection of the pg pool under the TypeORM data source (same
   * connections, same type parsers), without TypeORM's per-query runner: the ledger's hot
   * path. Two round trips for a batch, not four: the BEGIN travels with the first statement
   * (the locks) and the COMMIT with the statement marked `commit` (the write), each pair
   * as one simple-protocol message (`inlineParameters`). A statement that fails there
   * fails the message, the COMMIT is not run, and the transaction is rolled back. A
   * transaction whose first statement is marked `commit` (a write on remembered rows) is
   * that statement alone, with its parameters, in autocommit: one round trip, one statement.
   */
  private async transaction<T>(work: (tx: LedgerTransaction) => Promise<T>): Promise<T> {
    const pool = pgPoolOf<PgPool>(this.dataSource);
    const client = await pool.connect();
    let broken = false;
    // A connection terminated while checked out (a failover) emits 'error' on the client: with
    // no listener that would crash the process; the query in flight fails and the client is discarded.
    const onError = () => void (broken = true);
    client.on('error', onError);
    let begun = false;
    let committed = false;
    try {
      const tx: LedgerTransaction = {
        query: async (sql, params, options = {}) => {
          if (committed) throw new Error('the ledger transaction is already committed');
          if (!begun && options.commit) {
            // the transaction's only statement is a transaction of its own: sent alone, its parameters beside it (not lexed as literals)
            const result = (await client.query(sql, params as unknown[])) as { rows: Row[] };
            committed = true;
            return result.rows;
          }
          const parts = [...(begun ? [] : OPENING), inlineParameters(sql, params), ...(options.commit ? ['COMMIT'] : [])];
          const statement = begun ? 0 : OPENING.length;
          begun = true; // before the answer: a statement that fails leaves the transaction open, to be rolled back
          const results = await client.query(parts.join(';\n'));
          committed = !!options.commit;
          return Array.isArray(results) ? results[statement].rows : results.rows;
        },
      };
      const result = await work(tx);
      if (begun && !committed) await client.query('COMMIT');
      return result;
    } catch (error) {
      if (begun) await client.query('ROLLBACK').catch(() => (broken = true));
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.release(broken || undefined);
    }
  }

  /** Budgets of the given (tenant, level, subject) triples (no lock: a budget changes rarely; its period row is what is locked). */
  async budgetsOf(subjects: ReadonlyArray<{ tenantId: string; level: Level; subjectId: string }>): Promise<BudgetRow[]> {
    if (subjects.length === 0) return [];
    const rows: Row[] = await this.dataSource.query(
      `SELECT b.* FROM unnest($1::text[], $2::text[], $3::text[]) AS k(tenant_id, level, subject_id)
         JOIN ${this.t.budgets} b ON b.tenant_id = k.tenant_id AND b.level = k.level AND b.subject_id = k.subject_id`,
      [subjects.map((s) => s.tenantId), subjects.map((s) => s.level), subjects.map((s) => s.subjectId)],
    );
    return rows.map(budgetOf);
  }

  /** Opens missing period accounts (autocommit, before any lock is taken; in lock order). */
  async openPeriods(periods: readonly PeriodToOpen[]): Promise<void> {
    if (periods.length === 0) return;
    await this.dataSource.query(
      `INSERT INTO ${this.t.periods} (budget_id, period_start, period_end, tenant_id, level, subject_id, limit_micros, hard, thresholds)
       SELECT p.budget_id, p.period_start, p.period_end, b.tenant_id, b.level, b.subject_id, b.limit_micros, b.hard, b.thresholds
         FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS p(budget_id, period_start, period_end)
         JOIN ${this.t.budgets} b ON b.budget_id = p.budget_id
        ORDER BY CASE b.level WHEN 'tenant' THEN 0 WHEN 'team' THEN 1 WHEN 'user' THEN 2 ELSE 3 END, p.budget_id, p.period_start
       ON CONFLICT (budget_id, period_start) DO NOTHING`,
      [periods.map((p) => p.budget.budgetId), periods.map((p) => p.start), periods.map((p) => p.end)],
    );
  }

  /**
   * Locks, in ONE statement (one round trip), the holds of these request ids (in key order)
   * and then the accounts a batch moves, in the ledger's lock order: the given accounts (a
   * reserve's current periods) and every account a locked hold was charged to (a settle's or
   * release's). Both CTEs are materialized and the holds' branch is read first, so every
   * transaction takes holds before accounts, each in one total order: no wait cycle.
   */
  async lock(
    tx: LedgerTransaction,
    holdKeys: ReadonlyArray<{ tenantId: string; requestId: string }>,
    accountKeys: ReadonlyArray<{ budgetId: string; periodStart: Date }>,
  ): Promise<{ holds: Map<string, Hold>; accounts: Account[] }> {
    const rows: Row[] = await tx.query(
      `WITH h AS MATERIALIZED (
         SELECT h.* FROM ${this.t.holds} h
           JOIN unnest($1::text[], $2::text[]) AS k(tenant_id, request_id) ON h.tenant_id = k.tenant_id AND h.request_id = k.request_id
          ORDER BY h.tenant_id, h.request_id
            FOR UPDATE OF h
       ), k AS (
         SELECT x.budget_id, x.period_start FROM unnest($3::uuid[], $4::timestamptz[]) AS x(budget_id, period_start)
         UNION
         SELECT (e->>'budgetId')::uuid, (e->>'periodStart')::timestamptz FROM h, jsonb_array_elements(h.accounts) AS e
       ), a AS MATERIALIZED (
         SELECT a.* FROM ${this.t.periods} a JOIN k ON a.budget_id = k.budget_id AND a.period_start = k.period_start
          ORDER BY CASE a.level WHEN 'tenant' THEN 0 WHEN 'team' THEN 1 WHEN 'user' THEN 2 ELSE 3 END, a.budget_id, a.period_start
            FOR UPDATE OF a
       )
       SELECT 'hold' AS kind, h.tenant_id, h.request_id, h.agent_id, h.team_id, h.amount, h.status, h.accounts, h.expires_at, h.posted,
              h.version, h.reserve_answer, h.settle_answer, h.release_answer, h.updated_at, h.created_at, h.revision, h.kind AS hold_kind, h.allotment_id,
              NULL::uuid AS budget_id, NULL::timestamptz AS period_start, NULL::timestamptz AS period_end, NULL::text AS level,
              NULL::text AS subject_id, NULL::bigint AS limit_micros, NULL::boolean AS hard, NULL::integer[] AS thresholds, NULL::bigint AS pending
         FROM h
       UNION ALL
       SELECT 'account', a.tenant_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, a.posted, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              a.budget_id, a.period_start, a.period_end, a.level, a.subject_id, a.limit_micros, a.hard, a.thresholds, a.pending
         FROM a`,
      [holdKeys.map((k) => k.tenantId), holdKeys.map((k) => k.requestId), accountKeys.map((k) => k.budgetId), accountKeys.map((k) => k.periodStart)],
    );
    const holds = new Map<string, Hold>();
    const accounts: Account[] = [];
    for (const r of rows) {
      if (r.kind === 'hold') holds.set(holdKey(r.tenant_id as string, r.request_id as string), holdOf(r));
      else accounts.push(accountOf(r));
    }
    return { holds, accounts };
  }

  /**
   * Stores what a batch decided in ONE statement (one round trip, in `tx`), and commits it
   * in the same round trip; it is the last statement of a ledger transaction, or the only
   * one (a batch decided on remembered rows). In the lock order: the changed holds, each
   * only if still at the version it was decided on; the accounts' new posted and pending,
   * each only if the row still holds what the decision read (the CHECK re-checks every hard
   * row); the new holds (a plain INSERT: a request id another instance inserted meanwhile
   * fails it on the primary key); the events (the outbox; a
   * hold's at its exact version, so a conflict is an error, a threshold's once); the usage
   * lines. A hold or account that was not as decided on fails it with `STALE_ROWS`
   * (`ledger_expect`); under `lock` that cannot happen.
   */
  async write(tx: LedgerTransaction, w: LedgerWrite): Promise<void> {
    for (const { event } of w.events) {
      const v = validateForPublish(event);
      if (!v.ok) throw new PalisadeError('validation', `event ${event.type} is malformed`, v.problems);
    }
    // the event's id, type and tenant are read from its envelope, not sent twice
    const events = (x: StreamEvent[]) => x.map((v) => ({ stream_id: v.streamId, stream_version: v.version, envelope: v.event }));
    await tx.query(
      `SELECT ${this.t.write}($1::jsonb, $2::jsonb, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7::int, $8::int)`,
      // one JSON document per table (bigints as decimal strings, dates as ISO 8601): one JSON.stringify each; a row of
      // holds, accounts or usage lines is an array of its columns in the order ledger_write reads them (ledger.migration.ts)
      [
        ...[
          w.accounts.map(({ after: x, before: b }) => [
            x.budgetId,
            x.periodStart,
            x.posted.toString(),
            x.pending.toString(),
            b.posted.toString(),
            b.pending.toString(),
            b.limit.toString(),
            b.hard,
            b.thresholds,
          ]),
          w.newHolds.map((x) => [
            x.tenantId,
            x.requestId,
            x.agentId,
            x.teamId,
            x.amount.toString(),
            x.status,
            x.accounts,
            x.expiresAt,
            x.posted.toString(),
            x.version,
            x.reserveAnswer,
            x.settleAnswer,
            x.releaseAnswer,
            x.updatedAt,
            x.createdAt,
            x.revision,
            x.kind ?? 'request',
            x.allotmentId ?? null,
          ]),
          w.changedHolds.map(({ hold: x, before, beforeAmount }) => [
            x.tenantId,
            x.requestId,
            before,
            x.status,
            x.posted.toString(),
            x.version,
            x.settleAnswer,
            x.releaseAnswer,
            x.updatedAt,
            x.revision,
            // an allotment's: what it still holds (a request's settled against it lowers it), written only over what was decided on
            x.amount.toString(),
            beforeAmount.toString(),
          ]),
          events(w.events.filter((x) => !x.once)),
          events(w.events.filter((x) => x.once)),
          w.usage.map((l) => [
            l.eventId,
            l.tenantId,
            l.requestId,
            l.source,
            l.agentId,
            l.teamId,
            l.model,
            l.posted.toString(),
            l.actual.toString(),
            l.overrun.toString(),
            l.usage,
            l.occurredAt,
            l.revision,
          ]),
        ].map((rows) => JSON.stringify(rows)),
        w.changedHolds.length,
        w.accounts.length,
      ],
      { commit: true },
    );
  }

  /** Holds past their TTL, oldest first (no lock: the release locks and re-checks). */
  async expiredHolds(now: Date, limit: number): Promise<Array<{ tenantId: string; requestId: string }>> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT tenant_id, request_id FROM ${this.t.holds} WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id as string, requestId: r.request_id as string }));
  }

  /** The current (latest started, not ended) period account of each budget of a subject, for status. */
  async currentAccounts(tenantId: string, now: Date, filter: { level?: Level; subjectId?: string } = {}): Promise<Array<{ budget: BudgetRow; account: Account | null }>> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT b.*, a.period_start AS a_period_start, a.period_end AS a_period_end, a.limit_micros AS a_limit, a.hard AS a_hard,
              a.posted AS a_posted, a.pending AS a_pending, a.thresholds AS a_thresholds
         FROM ${this.t.budgets} b
         LEFT JOIN LATERAL (
           SELECT * FROM ${this.t.periods} p
            WHERE p.budget_id = b.budget_id AND p.period_start <= $2 AND (p.period_end IS NULL OR p.period_end > $2)
            ORDER BY p.period_start DESC LIMIT 1) a ON true
        WHERE b.tenant_id = $1 AND ($3::text IS NULL OR b.level = $3) AND ($4::text IS NULL OR b.subject_id = $4)
        ORDER BY CASE b.level WHEN 'tenant' THEN 0 WHEN 'team' THEN 1 WHEN 'user' THEN 2 ELSE 3 END, b.subject_id`,
      [tenantId, now, filter.level ?? null, filter.subjectId ?? null],
    );
    return rows.map((r) => {
      const budget = budgetOf(r);
      const account: Account | null =
        r.a_period_start === null
          ? null
          : {
              budgetId: budget.budgetId,
              level: budget.level,
              subjectId: budget.subjectId,
              periodStart: r.a_period_start as Date,
              periodEnd: (r.a_period_end as Date | null) ?? null,
              limit: BigInt(r.a_limit as string),
              hard: r.a_hard as boolean,
              thresholds: r.a_thresholds as number[],
              posted: BigInt(r.a_posted as string),
              pending: BigInt(r.a_pending as string),
            };
      return { budget, account };
    });
  }

  /** The hold of a request, unlocked (reads). */
  async hold(tenantId: string, requestId: string): Promise<Hold | undefined> {
    const rows: Row[] = await this.dataSource.query(`SELECT * FROM ${this.t.holds} WHERE tenant_id = $1 AND request_id = $2`, [tenantId, requestId]);
    return rows[0] ? holdOf(rows[0]) : undefined;
  }
}

export const holdKey = (tenantId: string, requestId: string) => `${tenantId}\u0000${requestId}`;

/** A request id the batch took for new was inserted meanwhile by another instance (the holds' primary key). */
const heldMeanwhile = (e: { code?: string; constraint?: string }) => e.code === '23505' && e.constraint === 'holds_pkey';

/** Rows a batch was decided on were not as it found or remembered them: it is to be decided again on locked rows. */
export class StaleRowsError extends Error {
  readonly code = STALE_ROWS;
}

/** The error of a ledger write or transaction whose rows were not as decided on (`STALE_ROWS`). */
export const isStaleRows = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === STALE_ROWS;

/**
 * An error after which a batch is decided again on locked rows (the attempt on remembered rows has one try): stale
 * rows, or a deadlock or serialization failure (rolled back, nothing written; `inTransaction` would run it again).
 */
export const decideAgain = (error: unknown): boolean => isStaleRows(error) || SERIALIZATION_CODES.has(String((error as { code?: unknown } | null)?.code));

export function mapError(error: unknown): unknown {
  const e = (error ?? {}) as { code?: string; constraint?: string };
  if (e.code === '23514' && e.constraint === 'budget_periods_within_limit') {
    return new PalisadeError('conflict', 'the change would take a hard budget past its limit');
  }
  // a hold missing from the rows decided on, as stale as a changed one (no attempt left to read it here)
  if (heldMeanwhile(e)) return new StaleRowsError('a request id taken for new is held by another instance', { cause: error });
  return error;
}

export function budgetOf(r: Row): BudgetRow {
  return {
    budgetId: r.budget_id as string,
    tenantId: r.tenant_id as string,
    level: r.level as Level,
    subjectId: r.subject_id as string,
    limit: BigInt(r.limit_micros as string),
    period: r.period as Period,
    timeZone: r.time_zone as string,
    hard: r.hard as boolean,
    thresholds: r.thresholds as number[],
  };
}

function accountOf(r: Row): Account {
  return {
    budgetId: r.budget_id as string,
    level: r.level as Level,
    subjectId: r.subject_id as string,
    periodStart: r.period_start as Date,
    periodEnd: (r.period_end as Date | null) ?? null,
    limit: BigInt(r.limit_micros as string),
    hard: r.hard as boolean,
    thresholds: r.thresholds as number[],
    posted: BigInt(r.posted as string),
    pending: BigInt(r.pending as string),
  };
}

function holdOf(r: Row): Hold {
  return {
    tenantId: r.tenant_id as string,
    requestId: r.request_id as string,
    kind: (r.hold_kind as HoldKind | null) ?? 'request',
    allotmentId: (r.allotment_id as string | null) ?? null,
    agentId: r.agent_id as string,
    teamId: (r.team_id as string | null) ?? null,
    amount: BigInt(r.amount as string),
    status: r.status as HoldStatus,
    accounts: r.accounts as HeldAccount[],
    expiresAt: r.expires_at as Date,
    posted: BigInt(r.posted as string),
    version: r.version as number,
    reserveAnswer: r.reserve_answer as ReserveAnswer,
    settleAnswer: (r.settle_answer as SettleAnswer | null) ?? null,
    releaseAnswer: (r.release_answer as ReleaseAnswer | null) ?? null,
    revision: r.revision as number,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}

export type { LedgerAnswer };
