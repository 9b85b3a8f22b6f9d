import { Query, type QueryResult } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';
import { createTestSchema, type TestSchema } from '@palisade/testing';
import { createDataSource, ident } from './data-source';
import { preparedSql, runInTransaction, submitOf, type SqlRunner } from './pg-transaction';

describe('runInTransaction', () => {
  let db: TestSchema;
  // one connection (of the schema's owner, who may create tables), so that every transaction below runs on the connection the one before it left
  let single: DataSource;
  let t: string;

  beforeAll(async () => {
    db = await createTestSchema('tx');
    t = `${ident(db.schema)}.rows`;
    single = createDataSource({ ...db.owner, poolSize: 1 });
    await single.initialize();
    await single.query(`CREATE TABLE ${t} (id int PRIMARY KEY, n int NOT NULL)`);
  });
  afterAll(async () => {
    await single?.destroy();
    await db.drop();
  });

  const xact = 'SELECT pg_current_xact_id()::text AS x';

  it('runs the first statement inside the transaction it opens (BEGIN travels with it)', async () => {
    const [first, second] = await runInTransaction(single, async (sql) => [await sql.query(`${xact} WHERE $1::int = 1`, [1]), await sql.query(xact)]);
    expect(first[0].x).toBe(second[0].x);
    const [named, again] = await runInTransaction(single, async (sql) => [await sql.query(preparedSql(`${xact} WHERE $1::int = 1`), [1]), await sql.query(xact)]);
    expect(named[0].x).toBe(again[0].x);
    const [parsed, after] = await runInTransaction(single, async (sql) => [await sql.query(preparedSql(`${xact} WHERE $1::int = 1`), [1]), await sql.query(xact)]);
    expect(parsed[0].x).toBe(after[0].x);
  });

  it('answers as TypeORM did: rows, and [rows, count] for UPDATE and DELETE', async () => {
    const answers = await runInTransaction(single, async (sql) => [
      await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, 1), ($2, 1) RETURNING id`, [1, 2]),
      await sql.query(`UPDATE ${t} SET n = n + 1 WHERE id = ANY($1::int[]) RETURNING id`, [[1, 2]]),
      await sql.query(`DELETE FROM ${t} WHERE id = $1`, [2]),
      await sql.query(`SELECT id, n FROM ${t} ORDER BY id`),
    ]);
    expect(answers).toEqual([[{ id: 1 }, { id: 2 }], [[{ id: 1 }, { id: 2 }], 2], [[], 1], [{ id: 1, n: 2 }]]);
  });

  it('rolls back when the first statement fails, with the error TypeORM gave, and the connection serves the next transaction', async () => {
    const failed = runInTransaction(single, (sql) => sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, NULL)`, [10]));
    await expect(failed).rejects.toBeInstanceOf(QueryFailedError);
    await expect(failed).rejects.toMatchObject({ code: '23502', column: 'n' });
    expect(await runInTransaction(single, (sql) => sql.query(`SELECT count(*)::int AS n FROM ${t} WHERE id = $1`, [10]))).toEqual([{ n: 0 }]);
  });

  it('rolls back all statements when the work fails after them', async () => {
    await expect(
      runInTransaction(single, async (sql) => {
        await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, 1)`, [20]);
        await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, 1)`, [21]);
        throw new Error('decision failed');
      }),
    ).rejects.toThrow('decision failed');
    expect(await single.query(`SELECT count(*)::int AS n FROM ${t} WHERE id IN (20, 21)`)).toEqual([{ n: 0 }]);
  });

  it('a prepared statement that failed to parse is parsed again once it can be', async () => {
    const later = `${ident(db.schema)}.later`;
    const statement = preparedSql(`SELECT count(*)::int AS n FROM ${later} WHERE n > $1`);
    await expect(runInTransaction(single, (sql) => sql.query(statement, [0]))).rejects.toMatchObject({ code: '42P01' });
    await single.query(`CREATE TABLE ${later} (n int)`);
    expect(await runInTransaction(single, (sql) => sql.query(statement, [0]))).toEqual([{ n: 0 }]);
    expect(await runInTransaction(single, (sql) => sql.query(statement, [0]))).toEqual([{ n: 0 }]);
  });

  it('rejects when `work` caught a failed statement\'s error and returned: COMMIT answered ROLLBACK, nothing is kept, no hook runs', async () => {
    let rung = false;
    const done = runInTransaction(single, async (sql) => {
      sql.afterCommit(() => void (rung = true));
      await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, 1)`, [40]);
      await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, NULL)`, [41]).catch(() => undefined);
      return 'done';
    });
    await expect(done).rejects.toBeInstanceOf(QueryFailedError);
    await expect(done).rejects.toMatchObject({ code: '25P02', message: expect.stringContaining('rolled back') });
    expect(rung).toBe(false);
    expect(await single.query(`SELECT count(*)::int AS n FROM ${t} WHERE id IN (40, 41)`)).toEqual([{ n: 0 }]);
  });

  it('runs statements in the order `work` issued them, when the second is issued before BEGIN answered', async () => {
    const [, updated] = await runInTransaction(single, (sql) =>
      Promise.all([sql.query(`INSERT INTO ${t} (id, n) VALUES (50, 1)`), sql.query(`UPDATE ${t} SET n = n + 1 WHERE id = $1`, [50])]),
    );
    expect(updated).toEqual([[], 1]);
    const insert = preparedSql(`INSERT INTO ${t} (id, n) VALUES ($1, 1)`);
    const [, again] = await runInTransaction(single, (sql) => Promise.all([sql.query(insert, [51]), sql.query(`UPDATE ${t} SET n = n + 1 WHERE id = $1`, [51])]));
    expect(again).toEqual([[], 1]);
    expect(await single.query(`SELECT id, n FROM ${t} WHERE id IN (50, 51) ORDER BY id`)).toEqual([
      { id: 50, n: 2 },
      { id: 51, n: 2 },
    ]);
  });

  it('rolls back when a named statement already parsed on the connection fails as it runs, and the connection and statement serve the next transaction', async () => {
    const insert = preparedSql(`INSERT INTO ${t} (id, n) SELECT $1, 10 / $2::int`);
    await runInTransaction(single, (sql) => sql.query(insert, [60, 1]));
    const failed = runInTransaction(single, async (sql) => {
      await sql.query(insert, [61, 0]);
      await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, 1)`, [62]);
    });
    await expect(failed).rejects.toMatchObject({ code: '22012' });
    expect(await runInTransaction(single, (sql) => sql.query(insert, [63, 2]))).toEqual([]);
    expect(await single.query(`SELECT id, n FROM ${t} WHERE id BETWEEN 60 AND 63 ORDER BY id`)).toEqual([
      { id: 60, n: 10 },
      { id: 63, n: 5 },
    ]);
    // outside a transaction block a statement's transaction starts with it: the connection was left with none open
    expect(await single.query('SELECT now() = statement_timestamp() AS idle')).toEqual([{ idle: true }]);
  });

  // node-postgres's own Query is a Submittable, as a COPY stream of pg-copy-streams is
  const submitted = (sql: SqlRunner, text: string) =>
    new Promise<Array<Record<string, string>>>((resolve, reject) => void submitOf(sql)!(new Query(text, [], (error: Error | undefined, result: QueryResult) => (error ? reject(error) : resolve(result.rows)))));

  it('runs a submitted statement inside the transaction, first or not, and rolls it back with the rest', async () => {
    const [first, second, third] = await runInTransaction(single, async (sql) => [await submitted(sql, xact), await sql.query(xact), await submitted(sql, xact)]);
    expect(first[0].x).toBe((second as Array<{ x: string }>)[0].x);
    expect(third[0].x).toBe(first[0].x);
    await expect(
      runInTransaction(single, async (sql) => {
        await submitted(sql, `INSERT INTO ${t} (id, n) VALUES (70, 1)`);
        throw new Error('the work failed after it');
      }),
    ).rejects.toThrow('the work failed after it');
    await expect(
      runInTransaction(single, async (sql) => {
        await sql.query(`INSERT INTO ${t} (id, n) VALUES ($1, 1)`, [71]);
        await submitted(sql, `INSERT INTO ${t} (id, n) VALUES (71, 1)`);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await single.query(`SELECT id FROM ${t} WHERE id IN (70, 71)`)).toEqual([]);
  });

  it('refuses statements once the transaction has ended', async () => {
    let kept: { query(sql: string): Promise<unknown> } | undefined;
    await runInTransaction(single, async (sql) => void (kept = sql));
    await expect(kept!.query('SELECT 1')).rejects.toThrow('the transaction has ended');
  });
});
