import { sqlMigration } from '@palisade/postgres';

/**
 * The ledger's tables. `budgets` is the read model of the budget streams; `budget_periods`
 * are the ledger's accounts (one row per budget and period) whose CHECK makes overshooting
 * a hard budget impossible even for a bug above it; `holds` is one row per request id,
 * with the first answer of each operation (idempotency); `usage_lines` is append-only,
 * one line per settled request (metering), summing to what was posted.
 */
export const ledgerMigration = sqlMigration('BillingLedger1764756000000', (s, app) => [
  `CREATE TABLE ${s}.budgets (
     budget_id    uuid        PRIMARY KEY,
     tenant_id    text        NOT NULL,
     level        text        NOT NULL CHECK (level IN ('tenant', 'team', 'agent')),
     subject_id   text        NOT NULL,
     limit_micros bigint      NOT NULL CHECK (limit_micros >= 0),
     period       text        NOT NULL CHECK (period IN ('month', 'day', 'none')),
     time_zone    text        NOT NULL,
     hard         boolean     NOT NULL,
     thresholds   integer[]   NOT NULL,
     version      integer     NOT NULL,
     updated_at   timestamptz NOT NULL,
     CONSTRAINT budgets_subject_unique UNIQUE (tenant_id, level, subject_id)
   )`,
  `CREATE TABLE ${s}.budget_periods (
     budget_id    uuid        NOT NULL,
     period_start timestamptz NOT NULL,
     period_end   timestamptz,
     tenant_id    text        NOT NULL,
     level        text        NOT NULL,
     subject_id   text        NOT NULL,
     limit_micros bigint      NOT NULL CHECK (limit_micros >= 0),
     hard         boolean     NOT NULL,
     thresholds   integer[]   NOT NULL,
     posted       bigint      NOT NULL DEFAULT 0 CHECK (posted >= 0),
     pending      bigint      NOT NULL DEFAULT 0 CHECK (pending >= 0),
     PRIMARY KEY (budget_id, period_start),
     CONSTRAINT budget_periods_within_limit CHECK (NOT hard OR posted + pending <= limit_micros)
   )`,
  `CREATE INDEX budget_periods_subject ON ${s}.budget_periods (tenant_id, level, subject_id, period_start DESC)`,
  `CREATE TABLE ${s}.holds (
     tenant_id      text        NOT NULL,
     request_id     text        NOT NULL,
     agent_id       text        NOT NULL,
     team_id        text,
     amount         bigint      NOT NULL CHECK (amount >= 0),
     status         text        NOT NULL CHECK (status IN ('held', 'refused', 'settled', 'released', 'expired')),
     accounts       jsonb       NOT NULL,
     expires_at     timestamptz NOT NULL,
     posted         bigint      NOT NULL DEFAULT 0 CHECK (posted >= 0),
     version        integer     NOT NULL,
     reserve_answer jsonb       NOT NULL,
     settle_answer  jsonb,
     release_answer jsonb,
     created_at     timestamptz NOT NULL,
     updated_at     timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, request_id)
   )`,
  `CREATE INDEX holds_expiring ON ${s}.holds (expires_at) WHERE status = 'held'`,
  `CREATE TABLE ${s}.usage_lines (
     event_id       uuid        PRIMARY KEY,
     tenant_id      text        NOT NULL,
     request_id     text        NOT NULL,
     source         text        NOT NULL,
     agent_id       text        NOT NULL,
     team_id        text,
     model          text,
     posted_micros  bigint      NOT NULL CHECK (posted_micros >= 0),
     actual_micros  bigint      NOT NULL CHECK (actual_micros >= 0),
     overrun_micros bigint      NOT NULL CHECK (overrun_micros >= 0),
     usage          jsonb       NOT NULL,
     occurred_at    timestamptz NOT NULL,
     recorded_at    timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE INDEX usage_lines_tenant_time ON ${s}.usage_lines (tenant_id, occurred_at)`,
  `CREATE UNIQUE INDEX usage_lines_request ON ${s}.usage_lines (tenant_id, source, request_id)`,
  `CREATE FUNCTION ${s}.forbid_usage_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN RAISE EXCEPTION 'usage lines are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege'; END $$`,
  `CREATE TRIGGER usage_lines_append_only BEFORE UPDATE OR DELETE ON ${s}.usage_lines FOR EACH ROW EXECUTE FUNCTION ${s}.forbid_usage_mutation()`,
  `CREATE TABLE ${s}.price_tables (
     tenant_id      text        NOT NULL,
     version        integer     NOT NULL CHECK (version > 0),
     effective_from timestamptz NOT NULL,
     currency       text        NOT NULL,
     entries        jsonb       NOT NULL,
     published_at   timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, version)
   )`,
  `CREATE INDEX price_tables_effective ON ${s}.price_tables (tenant_id, effective_from DESC, version DESC)`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.budgets TO ${app}`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.budget_periods, ${s}.holds TO ${app}`,
  `GRANT SELECT, INSERT ON ${s}.usage_lines, ${s}.price_tables TO ${app}`,
]);

/**
 * Room on every page for the next version of a row: budget periods and holds are updated
 * in place all the time (posted, pending, status), none of their indexed columns change,
 * so with free space PostgreSQL keeps each update on the row's page (HOT) instead of adding
 * index entries for it.
 */
/** Budgets of people (the user an agent acts for), where a tenant wants them. */
export const ledgerUserBudgetsMigration = sqlMigration('BillingUserBudgets1764770000000', (s) => [
  `ALTER TABLE ${s}.budgets DROP CONSTRAINT budgets_level_check`,
  `ALTER TABLE ${s}.budgets ADD CONSTRAINT budgets_level_check CHECK (level IN ('tenant', 'team', 'user', 'agent'))`,
]);

export const ledgerFillfactorMigration = sqlMigration('BillingLedgerFillfactor1764760000000', (s) => [
  `ALTER TABLE ${s}.budget_periods SET (fillfactor = 50)`,
  `ALTER TABLE ${s}.holds SET (fillfactor = 70)`,
]);

/**
 * Late and corrected usage: a hold remembers the usage revision it posted; a usage line
 * has a revision (0 the request's usage, higher a correction whose amounts are the
 * differences, so they may be negative) and is unique per request and revision.
 */
export const ledgerUsageRevisionsMigration = sqlMigration('BillingUsageRevisions1764780000000', (s) => [
  `ALTER TABLE ${s}.holds ADD COLUMN revision integer NOT NULL DEFAULT 0 CHECK (revision >= 0)`,
  `ALTER TABLE ${s}.usage_lines ADD COLUMN revision integer NOT NULL DEFAULT 0 CHECK (revision >= 0)`,
  `DROP INDEX ${s}.usage_lines_request`,
  `CREATE UNIQUE INDEX usage_lines_request ON ${s}.usage_lines (tenant_id, source, request_id, revision)`,
  `ALTER TABLE ${s}.usage_lines DROP CONSTRAINT usage_lines_posted_micros_check`,
  `ALTER TABLE ${s}.usage_lines DROP CONSTRAINT usage_lines_actual_micros_check`,
  `ALTER TABLE ${s}.usage_lines DROP CONSTRAINT usage_lines_overrun_micros_check`,
  `ALTER TABLE ${s}.usage_lines ADD CONSTRAINT usage_lines_usage_not_negative
     CHECK (revision > 0 OR (posted_micros >= 0 AND actual_micros >= 0 AND overrun_micros >= 0))`,
]);

/**
 * A ledger batch decided on rows this instance remembers (its last commit) writes them
 * only if they are still as remembered (compare-and-set in the write statement), and calls
 * this with whether every row matched: a row another instance (or lane) changed meanwhile
 * fails the batch with SQLSTATE 40L01, and the service decides it again on locked rows.
 */
export const ledgerRememberedRowsMigration = sqlMigration('BillingRememberedRows1764790000000', (s) => [
  `CREATE FUNCTION ${s}.ledger_expect(ok boolean) RETURNS boolean LANGUAGE plpgsql AS $$
   BEGIN
     IF NOT ok THEN RAISE EXCEPTION 'ledger rows changed since this instance remembered them' USING ERRCODE = '40L01'; END IF;
     RETURN true;
   END $$`,
]);

/**
 * A batch's write as a function (`LedgerRepository.write`; the statement it held before, unchanged):
 * planned once per connection (a generic plan, nested loops only: every join pairs a batch's
 * keys with a table that grows with history), where the statement sent each time was parsed,
 * analysed and planned for every batch, its JSON literals scanned by the SQL lexer first (a
 * third of PostgreSQL's CPU per pair, `perf`; README "Performance"). One call is one statement,
 * so a batch on remembered rows needs no BEGIN and COMMIT around it. The holds' rows are
 * written before the accounts' (the lock order of every ledger transaction); a hold or account
 * not as decided on fails it with 40L01 (`ledger_expect`).
 */
export const ledgerWriteFunctionMigration = sqlMigration('BillingLedgerWrite1764800000000', (s) => [
  `CREATE FUNCTION ${s}.ledger_write(w_accounts jsonb, w_new_holds jsonb, w_changed_holds jsonb, w_events jsonb, w_once_events jsonb, w_usage jsonb,
                                     w_changed_count int, w_account_count int) RETURNS void LANGUAGE plpgsql
     SET enable_hashjoin = off SET enable_mergejoin = off SET plan_cache_mode = force_generic_plan AS $$
   DECLARE ok boolean;
   BEGIN
     WITH changed_holds AS (
       UPDATE ${s}.holds h SET status = x.status, posted = x.posted, version = x.version, settle_answer = x.settle_answer,
              release_answer = x.release_answer, updated_at = x.updated_at, revision = x.revision
         FROM jsonb_to_recordset(w_changed_holds) AS x(tenant_id text, request_id text, before int, status text, posted bigint, version int,
              settle_answer jsonb, release_answer jsonb, updated_at timestamptz, revision int)
        WHERE h.tenant_id = x.tenant_id AND h.request_id = x.request_id AND h.version = x.before
       RETURNING 1
     ), new_holds AS (
       INSERT INTO ${s}.holds (tenant_id, request_id, agent_id, team_id, amount, status, accounts, expires_at, posted, version,
                               reserve_answer, settle_answer, release_answer, updated_at, created_at, revision)
       SELECT * FROM jsonb_to_recordset(w_new_holds) AS x(tenant_id text, request_id text, agent_id text, team_id text, amount bigint, status text,
              accounts jsonb, expires_at timestamptz, posted bigint, version int, reserve_answer jsonb, settle_answer jsonb, release_answer jsonb,
              updated_at timestamptz, created_at timestamptz, revision int)
       RETURNING 1
     ), accounts AS (
       UPDATE ${s}.budget_periods a SET posted = x.posted, pending = x.pending
         FROM jsonb_to_recordset(w_accounts) AS x(budget_id uuid, period_start timestamptz, posted bigint, pending bigint,
              was_posted bigint, was_pending bigint, limit_micros bigint, hard boolean, thresholds jsonb)
        WHERE a.budget_id = x.budget_id AND a.period_start = x.period_start
          AND a.posted = x.was_posted AND a.pending = x.was_pending AND a.limit_micros = x.limit_micros AND a.hard = x.hard
          AND to_jsonb(a.thresholds) = x.thresholds
          -- the holds' rows before the accounts' (the lock order of every ledger transaction)
          AND (SELECT count(*) FROM changed_holds) + (SELECT count(*) FROM new_holds) >= 0
       RETURNING 1
     ), events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_events) AS x(stream_id text, stream_version int, envelope jsonb)
       RETURNING 1
     ), once_events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_once_events) AS x(stream_id text, stream_version int, envelope jsonb)
       ON CONFLICT (stream_id, stream_version) DO NOTHING
       RETURNING 1
     ), usage AS (
       INSERT INTO ${s}.usage_lines (event_id, tenant_id, request_id, source, agent_id, team_id, model, posted_micros, actual_micros, overrun_micros, usage, occurred_at, revision)
       SELECT * FROM jsonb_to_recordset(w_usage) AS x(event_id uuid, tenant_id text, request_id text, source text, agent_id text, team_id text, model text,
              posted_micros bigint, actual_micros bigint, overrun_micros bigint, usage jsonb, occurred_at timestamptz, revision int)
       RETURNING 1
     )
     -- (the inserts run to completion whether or not this reads them)
     SELECT ${s}.ledger_expect((SELECT count(*) FROM changed_holds) = w_changed_count AND (SELECT count(*) FROM accounts) = w_account_count) INTO ok;
   END $$`,
]);

/**
 * `ledger_write` with the rows of holds, accounts and usage lines as JSON arrays, one value per column in the
 * order below (`LedgerRepository.write` builds them), not objects: no key names to send, parse and sort per row
 * (parsing a batch's 64 new holds this way took 40–50 % less of PostgreSQL's time than `jsonb_to_recordset` of
 * the objects, measured on a captured batch). A JSON null is a NULL in every column. The events keep their
 * objects (three fields; the envelope is stored as it is).
 */
export const ledgerWritePositionalMigration = sqlMigration('BillingLedgerWritePositional1764810000000', (s) => [
  `CREATE OR REPLACE FUNCTION ${s}.ledger_write(w_accounts jsonb, w_new_holds jsonb, w_changed_holds jsonb, w_events jsonb, w_once_events jsonb, w_usage jsonb,
                                     w_changed_count int, w_account_count int) RETURNS void LANGUAGE plpgsql
     SET enable_hashjoin = off SET enable_mergejoin = off SET plan_cache_mode = force_generic_plan AS $$
   DECLARE ok boolean;
   BEGIN
     WITH changed_holds AS (
       -- [tenant_id, request_id, before, status, posted, version, settle_answer, release_answer, updated_at, revision]
       UPDATE ${s}.holds h SET status = r->>3, posted = (r->>4)::bigint, version = (r->>5)::int, settle_answer = nullif(r->6, 'null'),
              release_answer = nullif(r->7, 'null'), updated_at = (r->>8)::timestamptz, revision = (r->>9)::int
         FROM jsonb_array_elements(w_changed_holds) AS r
        WHERE h.tenant_id = r->>0 AND h.request_id = r->>1 AND h.version = (r->>2)::int
       RETURNING 1
     ), new_holds AS (
       INSERT INTO ${s}.holds (tenant_id, request_id, agent_id, team_id, amount, status, accounts, expires_at, posted, version,
                               reserve_answer, settle_answer, release_answer, updated_at, created_at, revision)
       SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, r->>5, r->6, (r->>7)::timestamptz, (r->>8)::bigint, (r->>9)::int,
              r->10, nullif(r->11, 'null'), nullif(r->12, 'null'), (r->>13)::timestamptz, (r->>14)::timestamptz, (r->>15)::int
         FROM jsonb_array_elements(w_new_holds) AS r
       RETURNING 1
     ), accounts AS (
       -- [budget_id, period_start, posted, pending, was_posted, was_pending, limit_micros, hard, thresholds]
       UPDATE ${s}.budget_periods a SET posted = (r->>2)::bigint, pending = (r->>3)::bigint
         FROM jsonb_array_elements(w_accounts) AS r
        WHERE a.budget_id = (r->>0)::uuid AND a.period_start = (r->>1)::timestamptz
          AND a.posted = (r->>4)::bigint AND a.pending = (r->>5)::bigint AND a.limit_micros = (r->>6)::bigint AND a.hard = (r->>7)::boolean
          AND to_jsonb(a.thresholds) = r->8
          -- the holds' rows before the accounts' (the lock order of every ledger transaction)
          AND (SELECT count(*) FROM changed_holds) + (SELECT count(*) FROM new_holds) >= 0
       RETURNING 1
     ), events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_events) AS x(stream_id text, stream_version int, envelope jsonb)
       RETURNING 1
     ), once_events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_once_events) AS x(stream_id text, stream_version int, envelope jsonb)
       ON CONFLICT (stream_id, stream_version) DO NOTHING
       RETURNING 1
     ), usage AS (
       INSERT INTO ${s}.usage_lines (event_id, tenant_id, request_id, source, agent_id, team_id, model, posted_micros, actual_micros, overrun_micros, usage, occurred_at, revision)
       SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, (r->>7)::bigint, (r->>8)::bigint, (r->>9)::bigint, r->10, (r->>11)::timestamptz, (r->>12)::int
         FROM jsonb_array_elements(w_usage) AS r
       RETURNING 1
     )
     -- (the inserts run to completion whether or not this reads them)
     SELECT ${s}.ledger_expect((SELECT count(*) FROM changed_holds) = w_changed_count AND (SELECT count(*) FROM accounts) = w_account_count) INTO ok;
   END $$`,
]);

/**
 * `ledger_write` with the accounts updated before the new holds are inserted, where it inserted them first: the
 * order of a batch under the lock, whose lock statement locks the accounts and whose write then inserts the holds.
 * A batch on remembered rows that inserted a request id's hold and then waited for an account, while another
 * instance's locked batch on that account waited to insert the same request id (a client's retry on another
 * instance), was a deadlock: both stalled for deadlock_timeout and one failed. Now every ledger transaction
 * takes the holds it found, then the accounts, then the keys of new holds (an insert of a key another
 * transaction inserted waits for it like a lock): one order, no wait cycle. Otherwise unchanged.
 */
export const ledgerWriteAccountsFirstMigration = sqlMigration('BillingLedgerWriteAccountsFirst1764820000000', (s) => [
  `CREATE OR REPLACE FUNCTION ${s}.ledger_write(w_accounts jsonb, w_new_holds jsonb, w_changed_holds jsonb, w_events jsonb, w_once_events jsonb, w_usage jsonb,
                                     w_changed_count int, w_account_count int) RETURNS void LANGUAGE plpgsql
     SET enable_hashjoin = off SET enable_mergejoin = off SET plan_cache_mode = force_generic_plan AS $$
   DECLARE ok boolean;
   BEGIN
     WITH changed_holds AS (
       -- [tenant_id, request_id, before, status, posted, version, settle_answer, release_answer, updated_at, revision]
       UPDATE ${s}.holds h SET status = r->>3, posted = (r->>4)::bigint, version = (r->>5)::int, settle_answer = nullif(r->6, 'null'),
              release_answer = nullif(r->7, 'null'), updated_at = (r->>8)::timestamptz, revision = (r->>9)::int
         FROM jsonb_array_elements(w_changed_holds) AS r
        WHERE h.tenant_id = r->>0 AND h.request_id = r->>1 AND h.version = (r->>2)::int
       RETURNING 1
     ), accounts AS (
       -- [budget_id, period_start, posted, pending, was_posted, was_pending, limit_micros, hard, thresholds]
       UPDATE ${s}.budget_periods a SET posted = (r->>2)::bigint, pending = (r->>3)::bigint
         FROM jsonb_array_elements(w_accounts) AS r
        WHERE a.budget_id = (r->>0)::uuid AND a.period_start = (r->>1)::timestamptz
          AND a.posted = (r->>4)::bigint AND a.pending = (r->>5)::bigint AND a.limit_micros = (r->>6)::bigint AND a.hard = (r->>7)::boolean
          AND to_jsonb(a.thresholds) = r->8
          -- the held rows before the accounts (the lock order of every ledger transaction)
          AND (SELECT count(*) FROM changed_holds) >= 0
       RETURNING 1
     ), new_holds AS (
       INSERT INTO ${s}.holds (tenant_id, request_id, agent_id, team_id, amount, status, accounts, expires_at, posted, version,
                               reserve_answer, settle_answer, release_answer, updated_at, created_at, revision)
       SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, r->>5, r->6, (r->>7)::timestamptz, (r->>8)::bigint, (r->>9)::int,
              r->10, nullif(r->11, 'null'), nullif(r->12, 'null'), (r->>13)::timestamptz, (r->>14)::timestamptz, (r->>15)::int
         FROM jsonb_array_elements(w_new_holds) AS r
        -- the accounts before the new holds' keys, as under the lock (which locks accounts, then inserts): no wait cycle
        WHERE (SELECT count(*) FROM accounts) >= 0
       RETURNING 1
     ), events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_events) AS x(stream_id text, stream_version int, envelope jsonb)
       RETURNING 1
     ), once_events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_once_events) AS x(stream_id text, stream_version int, envelope jsonb)
       ON CONFLICT (stream_id, stream_version) DO NOTHING
       RETURNING 1
     ), usage AS (
       INSERT INTO ${s}.usage_lines (event_id, tenant_id, request_id, source, agent_id, team_id, model, posted_micros, actual_micros, overrun_micros, usage, occurred_at, revision)
       SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, (r->>7)::bigint, (r->>8)::bigint, (r->>9)::bigint, r->10, (r->>11)::timestamptz, (r->>12)::int
         FROM jsonb_array_elements(w_usage) AS r
       RETURNING 1
     )
     -- the new holds read here, after the check: inserted before the events and usage lines (which run to completion after
     -- this), so a request id another instance holds fails on the holds' primary key (stale rows), not on its event's version
     SELECT ${s}.ledger_expect((SELECT count(*) FROM changed_holds) = w_changed_count AND (SELECT count(*) FROM accounts) = w_account_count)
            AND (SELECT count(*) FROM new_holds) >= 0 INTO ok;
   END $$`,
]);

/**
 * Budget allotments: a hold of kind `allotment` is a block one router instance holds for one budget scope
 * and serves that scope's following requests from, in memory; each such request is settled against it
 * (its own hold row made then, `allotment_id` naming the allotment), which lowers the allotment's `amount`
 * (what it still holds, as for any held hold: the accounts' `pending` is the sum of the held holds'
 * amounts). `ledger_write` now also writes a changed hold's `amount` (position 10) and a new hold's `kind`
 * and `allotment_id` (16, 17); otherwise it is `BillingLedgerWriteAccountsFirst`'s.
 */
export const ledgerAllotmentsMigration = sqlMigration('BillingAllotments1764830000000', (s) => [
  `ALTER TABLE ${s}.holds ADD COLUMN kind text NOT NULL DEFAULT 'request' CHECK (kind IN ('request', 'allotment'))`,
  `ALTER TABLE ${s}.holds ADD COLUMN allotment_id text`,
  `CREATE OR REPLACE FUNCTION ${s}.ledger_write(w_accounts jsonb, w_new_holds jsonb, w_changed_holds jsonb, w_events jsonb, w_once_events jsonb, w_usage jsonb,
                                     w_changed_count int, w_account_count int) RETURNS void LANGUAGE plpgsql
     SET enable_hashjoin = off SET enable_mergejoin = off SET plan_cache_mode = force_generic_plan AS $$
   DECLARE ok boolean;
   BEGIN
     WITH changed_holds AS (
       -- [tenant_id, request_id, before, status, posted, version, settle_answer, release_answer, updated_at, revision, amount]
       UPDATE ${s}.holds h SET status = r->>3, posted = (r->>4)::bigint, version = (r->>5)::int, settle_answer = nullif(r->6, 'null'),
              release_answer = nullif(r->7, 'null'), updated_at = (r->>8)::timestamptz, revision = (r->>9)::int, amount = (r->>10)::bigint
         FROM jsonb_array_elements(w_changed_holds) AS r
        WHERE h.tenant_id = r->>0 AND h.request_id = r->>1 AND h.version = (r->>2)::int
       RETURNING 1
     ), accounts AS (
       -- [budget_id, period_start, posted, pending, was_posted, was_pending, limit_micros, hard, thresholds]
       UPDATE ${s}.budget_periods a SET posted = (r->>2)::bigint, pending = (r->>3)::bigint
         FROM jsonb_array_elements(w_accounts) AS r
        WHERE a.budget_id = (r->>0)::uuid AND a.period_start = (r->>1)::timestamptz
          AND a.posted = (r->>4)::bigint AND a.pending = (r->>5)::bigint AND a.limit_micros = (r->>6)::bigint AND a.hard = (r->>7)::boolean
          AND to_jsonb(a.thresholds) = r->8
          -- the held rows before the accounts (the lock order of every ledger transaction)
          AND (SELECT count(*) FROM changed_holds) >= 0
       RETURNING 1
     ), new_holds AS (
       INSERT INTO ${s}.holds (tenant_id, request_id, agent_id, team_id, amount, status, accounts, expires_at, posted, version,
                               reserve_answer, settle_answer, release_answer, updated_at, created_at, revision, kind, allotment_id)
       SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, r->>5, r->6, (r->>7)::timestamptz, (r->>8)::bigint, (r->>9)::int,
              r->10, nullif(r->11, 'null'), nullif(r->12, 'null'), (r->>13)::timestamptz, (r->>14)::timestamptz, (r->>15)::int, r->>16, r->>17
         FROM jsonb_array_elements(w_new_holds) AS r
        -- the accounts before the new holds' keys, as under the lock (which locks accounts, then inserts): no wait cycle
        WHERE (SELECT count(*) FROM accounts) >= 0
       RETURNING 1
     ), events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_events) AS x(stream_id text, stream_version int, envelope jsonb)
       RETURNING 1
     ), once_events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_once_events) AS x(stream_id text, stream_version int, envelope jsonb)
       ON CONFLICT (stream_id, stream_version) DO NOTHING
       RETURNING 1
     ), usage AS (
       INSERT INTO ${s}.usage_lines (event_id, tenant_id, request_id, source, agent_id, team_id, model, posted_micros, actual_micros, overrun_micros, usage, occurred_at, revision)
       SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, (r->>7)::bigint, (r->>8)::bigint, (r->>9)::bigint, r->10, (r->>11)::timestamptz, (r->>12)::int
         FROM jsonb_array_elements(w_usage) AS r
       RETURNING 1
     )
     -- the new holds read here, after the check: inserted before the events and usage lines (which run to completion after
     -- this), so a request id another instance holds fails on the holds' primary key (stale rows), not on its event's version
     SELECT ${s}.ledger_expect((SELECT count(*) FROM changed_holds) = w_changed_count AND (SELECT count(*) FROM accounts) = w_account_count)
            AND (SELECT count(*) FROM new_holds) >= 0 INTO ok;
   END $$`,
]);

/**
 * A changed hold is written only if its row still holds the amount it was decided on, besides its version: a
 * draw from an allotment lowers its amount and appends no event on its stream (its version stays), so an
 * instance that remembered the allotment before another instance drew from it, and has the accounts fresh
 * since (another batch locked them), would write the amount it remembered over the draw (int test "an
 * allotment another instance drew from"). Its amount only falls while it is held, so the check cannot be fooled.
 */
export const ledgerAllotmentAmountCheckMigration = sqlMigration('BillingAllotmentAmountCheck1764840000000', (s) => [
  `CREATE OR REPLACE FUNCTION ${s}.ledger_write(w_accounts jsonb, w_new_holds jsonb, w_changed_holds jsonb, w_events jsonb, w_once_events jsonb, w_usage jsonb,
                                     w_changed_count int, w_account_count int) RETURNS void LANGUAGE plpgsql
     SET enable_hashjoin = off SET enable_mergejoin = off SET plan_cache_mode = force_generic_plan AS $$
   DECLARE ok boolean;
   BEGIN
     WITH changed_holds AS (
       -- [tenant_id, request_id, before, status, posted, version, settle_answer, release_answer, updated_at, revision, amount, was_amount]
       UPDATE ${s}.holds h SET status = r->>3, posted = (r->>4)::bigint, version = (r->>5)::int, settle_answer = nullif(r->6, 'null'),
              release_answer = nullif(r->7, 'null'), updated_at = (r->>8)::timestamptz, revision = (r->>9)::int, amount = (r->>10)::bigint
         FROM jsonb_array_elements(w_changed_holds) AS r
        WHERE h.tenant_id = r->>0 AND h.request_id = r->>1 AND h.version = (r->>2)::int AND h.amount = (r->>11)::bigint
       RETURNING 1
     ), accounts AS (
       -- [budget_id, period_start, posted, pending, was_posted, was_pending, limit_micros, hard, thresholds]
       UPDATE ${s}.budget_periods a SET posted = (r->>2)::bigint, pending = (r->>3)::bigint
         FROM jsonb_array_elements(w_accounts) AS r
        WHERE a.budget_id = (r->>0)::uuid AND a.period_start = (r->>1)::timestamptz
          AND a.posted = (r->>4)::bigint AND a.pending = (r->>5)::bigint AND a.limit_micros = (r->>6)::bigint AND a.hard = (r->>7)::boolean
          AND to_jsonb(a.thresholds) = r->8
          -- the held rows before the accounts (the lock order of every ledger transaction)
          AND (SELECT count(*) FROM changed_holds) >= 0
       RETURNING 1
     ), new_holds AS (
       INSERT INTO ${s}.holds (tenant_id, request_id, agent_id, team_id, amount, status, accounts, expires_at, posted, version,
                               reserve_answer, settle_answer, release_answer, updated_at, created_at, revision, kind, allotment_id)
       SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, r->>5, r->6, (r->>7)::timestamptz, (r->>8)::bigint, (r->>9)::int,
              r->10, nullif(r->11, 'null'), nullif(r->12, 'null'), (r->>13)::timestamptz, (r->>14)::timestamptz, (r->>15)::int, r->>16, r->>17
         FROM jsonb_array_elements(w_new_holds) AS r
        -- the accounts before the new holds' keys, as under the lock (which locks accounts, then inserts): no wait cycle
        WHERE (SELECT count(*) FROM accounts) >= 0
       RETURNING 1
     ), events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_events) AS x(stream_id text, stream_version int, envelope jsonb)
       RETURNING 1
     ), once_events AS (
       INSERT INTO ${s}.events (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
       SELECT x.stream_id, x.stream_version, (x.envelope->>'id')::uuid, x.envelope->>'type', x.envelope->>'tenantId', x.envelope
         FROM jsonb_to_recordset(w_once_events) AS x(stream_id text, stream_version int, envelope jsonb)
       ON CONFLICT (stream_id, stream_version) DO NOTHING
       RETURNING 1
     ), usage AS (
       INSERT INTO ${s}.usage_lines (event_id, tenant_id, request_id, source, agent_id, team_id, model, posted_micros, actual_micros, overrun_micros, usage, occurred_at, revision)
       SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, (r->>7)::bigint, (r->>8)::bigint, (r->>9)::bigint, r->10, (r->>11)::timestamptz, (r->>12)::int
         FROM jsonb_array_elements(w_usage) AS r
       RETURNING 1
     )
     -- the new holds read here, after the check: inserted before the events and usage lines (which run to completion after
     -- this), so a request id another instance holds fails on the holds' primary key (stale rows), not on its event's version
     SELECT ${s}.ledger_expect((SELECT count(*) FROM changed_holds) = w_changed_count AND (SELECT count(*) FROM accounts) = w_account_count)
            AND (SELECT count(*) FROM new_holds) >= 0 INTO ok;
   END $$`,
]);
