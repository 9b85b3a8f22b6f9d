import { Query, type Pool, type PoolClient, type QueryResult, type Submittable } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';
import { pgPoolOf } from './data-source';

/**
 * A statement PostgreSQL parses and plans once per connection (node-postgres names it and
 * sends only Bind/Execute after the first use): for hot statements whose planning costs more
 * than running them (the append's WITH). The name is derived from the text, so two texts
 * never share a name on one connection.
 */
export interface PreparedSql {
  readonly name: string;
  readonly text: string;
}

export function preparedSql(text: string): PreparedSql {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return { name: `palisade_${(hash >>> 0).toString(36)}_${text.length}`, text };
}

/** What a statement of a transaction answers: TypeORM's `EntityManager.query` shape, which every repository reads. */
export interface SqlRunner {
  query(sql: string | PreparedSql, params?: readonly unknown[]): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A transaction of `runInTransaction`: its statements, and work to do once it committed. */
export interface CommittingSql extends SqlRunner {
  /** `hook` runs once after COMMIT succeeded and the connection went back (never on a rollback); a hook added twice runs once. What it throws is dropped: the transaction committed. */
  afterCommit(hook: () => void): void;
}

/**
 * A transaction's connection taking a node-postgres Submittable (a COPY stream of
 * pg-copy-streams, say) as its next statement, when the transaction is one of
 * `runInTransaction`'s. It returns the Submittable; its failure fails the transaction as a
 * statement's would, when `work` throws it.
 */
export type SubmitSql = <Q extends Submittable>(query: Q) => Q;

/** The transaction's `submit`, when it is one of `runInTransaction`'s. */
export function submitOf(sql: SqlRunner): SubmitSql | undefined {
  const submit = (sql as { submit?: unknown }).submit;
  return typeof submit === 'function' ? (submit as SubmitSql) : undefined;
}

/** The transaction's `afterCommit`, when it is one of `runInTransaction`'s. */
export function afterCommitOf(sql: SqlRunner): CommittingSql['afterCommit'] | undefined {
  const hook = (sql as Partial<CommittingSql>).afterCommit;
  return typeof hook === 'function' ? hook : undefined;
}

/** node-postgres's connection, as far as a Query's `prepare` writes to it (not in its typings). */
interface PgWire {
  parsedStatements: Record<string, string>;
  parse(message: { text: string }): void;
  bind(message: object): void;
  execute(message: object): void;
}

/**
 * BEGIN and the transaction's first statement in one message train (extended protocol, one
 * Sync): one round trip where they took two. BEGIN's completion is not a result of the
 * statement; an error in either fails the query, and the caller rolls back.
 */
class BeginWith extends Query {
  private begun = false;

  constructor(sql: string | PreparedSql, params: readonly unknown[], callback: (err: Error | null, result: QueryResult) => void) {
    super({ text: sql as string, ...(typeof sql === 'string' ? {} : sql), values: params as unknown[], queryMode: 'extended' } as never, undefined as never, callback as never);
  }

  prepare(connection: PgWire): void {
    connection.parse({ text: 'BEGIN' });
    connection.bind({});
    connection.execute({});
    (Query.prototype as unknown as { prepare(c: PgWire): void }).prepare.call(this, connection);
  }

  handleCommandComplete(msg: { command?: string }, connection: PgWire): void {
    if (!this.begun) {
      this.begun = true;
      return;
    }
    (Query.prototype as unknown as { handleCommandComplete(m: object, c: PgWire): void }).handleCommandComplete.call(this, msg, connection);
  }
}

/** What runs one statement: a pg pool (a connection of its own for it) or a checked-out client. */
export interface Queryable {
  query(config: { text: string; values?: unknown[]; name?: string }, callback: (err: Error | null, result: QueryResult) => void): unknown;
}

/**
 * One statement through node-postgres's callback API. Its promise API (`query` without a
 * callback, which TypeORM's query runner uses) kept each statement's objects, its
 * parameters and result among them, alive past the next scavenge: with the router's model
 * calls committed that way 2.6–3.8 MB were promoted per scavenge, one call at a time, 0.15–1.0
 * through this (and in a loop of bare INSERTs 2.5 MB against none; 2026-12-06).
 */
export function pgStatement(on: Queryable, sql: string | PreparedSql, params: readonly unknown[]): Promise<QueryResult> {
  const config = typeof sql === 'string' ? { text: sql, values: params as unknown[] } : { ...sql, values: params as unknown[] };
  return new Promise((resolve, reject) => void on.query(config, (err, result) => (err ? reject(err) : resolve(result))));
}

/** TypeORM's answer to a query: the rows, and for UPDATE and DELETE `[rows, rowCount]`. */
function typeormShape(result: QueryResult): unknown {
  if (!result || !Object.prototype.hasOwnProperty.call(result, 'rows')) return undefined;
  return result.command === 'UPDATE' || result.command === 'DELETE' ? [result.rows, result.rowCount] : result.rows;
}

/** A statement's answer as TypeORM's `EntityManager.query` gives it (its errors as QueryFailedError, which carries pg's code and constraint). */
async function answer(sql: string | PreparedSql, params: readonly unknown[], result: Promise<QueryResult>): Promise<unknown> {
  try {
    return typeormShape(await result);
  } catch (error) {
    throw new QueryFailedError(typeof sql === 'string' ? sql : sql.text, params as unknown[], error as Error);
  }
}

/**
 * Statements each in a transaction of its own (PostgreSQL's implicit one) on the pg pool
 * under the data source, answering as TypeORM's `EntityManager.query` does: for the hot
 * single-statement commits (`PgEventStore.commitToNewStreams`, `commitToStream`), without
 * TypeORM's query runner and through the callback API (`pgStatement`).
 */
export function poolSql(dataSource: DataSource): SqlRunner {
  return {
    query: (sql, params = []) => {
      // none once the data source was destroyed (TypeORM drops it)
      const pool = pgPoolOf<Pool | undefined>(dataSource);
      return pool ? answer(sql, params, pgStatement(pool, sql, params)) : Promise.reject(new Error('the data source is not connected'));
    },
  };
}

/**
 * COMMIT's answer when it committed. PostgreSQL answers COMMIT of a transaction a statement
 * failed in with the tag ROLLBACK and no error: when `work` caught that statement's error and
 * returned, nothing it did is kept, and saying otherwise would lose its writes unnoticed.
 */
function committed(result: QueryResult): QueryResult {
  if (result.command === 'COMMIT') return result;
  throw Object.assign(new Error(`the transaction was rolled back (COMMIT answered ${String(result.command)}): a statement of it failed`), { code: '25P02', severity: 'ERROR' });
}

/**
 * `work` in one transaction on a connection of the pg pool under the data source (the same
 * connections and type parsers as TypeORM), without TypeORM's query runner: BEGIN travels
 * with the first statement, then COMMIT, so a transaction of one statement takes two round
 * trips where it took three. Statements answer as TypeORM's `EntityManager.query` does
 * (errors as its QueryFailedError), so repositories are unchanged. A failure of `work` or of
 * a statement rolls back; a connection that broke under the transaction is discarded.
 */
export async function runInTransaction<T>(dataSource: DataSource, work: (sql: CommittingSql) => Promise<T>): Promise<T> {
  const client: PoolClient = await pgPoolOf<Pool>(dataSource).connect();
  let broken: Error | undefined;
  // A connection terminated while checked out emits 'error' on the client: without a listener the process would crash.
  const onError = (error: Error) => void (broken = error);
  client.on('error', onError);
  let begun = false;
  let ended = false;
  const run = (sql: string | PreparedSql, params: readonly unknown[]): Promise<QueryResult> => {
    if (begun) return pgStatement(client, sql, params);
    begun = true; // before the answer: a statement that fails leaves the transaction open, to be rolled back
    const named = typeof sql !== 'string' && (client as unknown as { connection: PgWire }).connection.parsedStatements[sql.name] === sql.text;
    // a statement without parameters may hold several (simple protocol), and a named one is parsed alone the first time (node-postgres marks it parsed on the first ParseComplete, BEGIN's).
    // Both queued now, in order (node-postgres runs its queue in order): a statement `work` issues before BEGIN answers runs after this one, as it was called.
    if (params.length === 0 || (typeof sql !== 'string' && !named)) {
      // a connection that could not BEGIN is in no known state: discarded, not rolled back
      const begin = pgStatement(client, 'BEGIN', []).catch((error: Error) => {
        broken ??= error;
        throw error;
      });
      const first = pgStatement(client, sql, params);
      return Promise.all([begin, first]).then(([, result]) => result);
    }
    return new Promise((resolve, reject) => void client.query(new BeginWith(sql, params, (err, result) => (err ? reject(err) : resolve(result)))));
  };

  const hooks = new Set<() => void>();
  /** Why a BEGIN queued before a submitted statement failed (that statement ran outside a transaction block). */
  let unbegun: Error | undefined;
  const tx: CommittingSql & { submit: SubmitSql } = {
    query: (sql, params = []) => (ended ? Promise.reject(new Error('the transaction has ended')) : answer(sql, params, run(sql, params))),
    afterCommit: (hook) => void hooks.add(hook),
    submit: (query) => {
      if (ended) throw new Error('the transaction has ended');
      if (!begun) {
        // queued before it, as a first statement without parameters is (above)
        begun = true;
        client.query('BEGIN').catch((error: Error) => {
          broken ??= error;
          unbegun = error; // no COMMIT after it (below)
        });
      }
      return client.query(query);
    },
  };
  let result: T;
  try {
    result = await work(tx);
    ended = true;
    if (unbegun) throw unbegun;
    if (begun) await answer('COMMIT', [], pgStatement(client, 'COMMIT', []).then(committed));
  } catch (error) {
    ended = true;
    // after a COMMIT that failed there is no transaction left, and this ROLLBACK only warns; it finds out whether the connection still answers
    if (begun && !broken) await pgStatement(client, 'ROLLBACK', []).catch((rollback: Error) => void (broken ??= rollback));
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
  // The transaction committed: nothing after this may turn it into a failure its caller would retry.
  for (const hook of hooks) {
    try {
      hook();
    } catch {
      // a hook's failure is its own (a lost ring costs latency only); its error may hold data, so it is not logged
    }
  }
  return result;
}
