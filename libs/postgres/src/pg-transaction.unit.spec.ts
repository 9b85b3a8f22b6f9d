import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';
import { preparedSql, runInTransaction, type CommittingSql } from './pg-transaction';

/**
 * node-postgres's own Client over a fake wire: what the transaction writes is recorded as
 * protocol messages, and the test answers as PostgreSQL would. BEGIN travelling with the
 * first statement leans on Query's internals (prepare, handleCommandComplete, the
 * connection's parse/bind/execute and parsedStatements): a pg upgrade that changes them
 * fails here, not only against a server.
 */
class FakeWire extends EventEmitter {
  readonly sent: string[] = [];
  readonly parsedStatements: Record<string, string> = {};
  readonly stream = { cork: () => undefined, uncork: () => undefined, destroy: () => undefined };
  private waiting: Array<{ count: number; resolve: () => void }> = [];

  private record(message: string): void {
    this.sent.push(message);
    this.waiting = this.waiting.filter((w) => (this.sent.length >= w.count ? void w.resolve() : true));
  }
  /** Resolves once `count` messages were sent in all. */
  sentCount(count: number): Promise<void> {
    return this.sent.length >= count ? Promise.resolve() : new Promise((resolve) => void this.waiting.push({ count, resolve }));
  }
  answer(...messages: Array<[string, object?]>): void {
    for (const [name, message] of messages) this.emit(name, { name, ...message });
  }

  connect(): void {
    setImmediate(() => this.emit('connect'));
  }
  startup(): void {
    setImmediate(() => this.emit('readyForQuery', { name: 'readyForQuery', status: 'I' }));
  }
  query(text: string): void {
    this.record(`Query ${text}`);
  }
  parse(message: { text: string; name?: string }): void {
    this.record(`Parse ${message.name ?? ''}:${message.text}`);
  }
  bind(message: { statement?: string; values?: unknown[] }): void {
    this.record(`Bind ${message.statement ?? ''}${message.values ? `(${message.values.join(',')})` : ''}`);
  }
  describe(): void {
    this.record('Describe');
  }
  execute(): void {
    this.record('Execute');
  }
  sync(): void {
    this.record('Sync');
  }
  flush(): void {
    this.record('Flush');
  }
}

async function harness() {
  const wire = new FakeWire();
  const client = new Client({ connection: wire } as never);
  await client.connect();
  Object.assign(client, { release: () => undefined });
  const dataSource = { driver: { master: { connect: async () => client } } } as unknown as DataSource;
  return { wire, dataSource };
}

const INT4 = { fields: [{ name: 'n', dataTypeID: 23, format: 'text' }] };
const ok = (tag: string): Array<[string, object?]> => [['commandComplete', { text: tag }], ['readyForQuery', { status: 'I' }]];

describe('runInTransaction on the wire', () => {
  it('sends BEGIN in the first statement’s message train (one Sync) and answers with the statement’s result, not BEGIN’s', async () => {
    const { wire, dataSource } = await harness();
    const done = runInTransaction(dataSource, (sql) => sql.query('SELECT $1::int AS n', [7]));
    await wire.sentCount(8);
    expect(wire.sent).toEqual(['Parse :BEGIN', 'Bind ', 'Execute', 'Parse :SELECT $1::int AS n', 'Bind (7)', 'Describe', 'Execute', 'Sync']);
    wire.answer(
      ['parseComplete'],
      ['bindComplete'],
      ['commandComplete', { text: 'BEGIN' }],
      ['parseComplete'],
      ['bindComplete'],
      ['rowDescription', INT4],
      ['dataRow', { fields: ['7'] }],
      ...ok('SELECT 1'),
    );
    await wire.sentCount(9);
    expect(wire.sent[8]).toBe('Query COMMIT');
    wire.answer(...ok('COMMIT'));
    await expect(done).resolves.toEqual([{ n: 7 }]);
  });

  it('sends a named statement parsed before on this connection as Bind/Execute only, after BEGIN’s Parse', async () => {
    const { wire, dataSource } = await harness();
    const statement = preparedSql('SELECT $1::int AS n');
    wire.parsedStatements[statement.name] = statement.text;
    const done = runInTransaction(dataSource, (sql) => sql.query(statement, [3]));
    await wire.sentCount(7);
    expect(wire.sent).toEqual(['Parse :BEGIN', 'Bind ', 'Execute', `Bind ${statement.name}(3)`, 'Describe', 'Execute', 'Sync']);
    wire.answer(['parseComplete'], ['bindComplete'], ['commandComplete', { text: 'BEGIN' }], ['bindComplete'], ['rowDescription', INT4], ['dataRow', { fields: ['3'] }], ...ok('SELECT 1'));
    await wire.sentCount(8);
    wire.answer(...ok('COMMIT'));
    await expect(done).resolves.toEqual([{ n: 3 }]);
  });

  it.each([
    ['without parameters', (sql: CommittingSql) => sql.query('INSERT INTO t VALUES (1)'), 'Query INSERT INTO t VALUES (1)'],
    ['named and not yet parsed', (sql: CommittingSql) => sql.query(preparedSql('INSERT INTO t VALUES ($1)'), [1]), `Parse ${preparedSql('INSERT INTO t VALUES ($1)').name}:INSERT INTO t VALUES ($1)`],
  ])('runs a first statement %s before a statement issued while BEGIN is under way', async (_, first, firstMessage) => {
    const { wire, dataSource } = await harness();
    const done = runInTransaction(dataSource, (sql) => Promise.all([first(sql), sql.query('UPDATE t SET n = $1', [2])]));
    await wire.sentCount(1);
    expect(wire.sent).toEqual(['Query BEGIN']);
    wire.answer(...ok('BEGIN'));
    await wire.sentCount(2);
    expect(wire.sent[1]).toBe(firstMessage);
    const trainOfFirst = wire.sent.length;
    wire.answer(...(firstMessage.startsWith('Parse') ? ([['parseComplete'], ['bindComplete']] as Array<[string, object?]>) : []), ...ok('INSERT 0 1'));
    await wire.sentCount(trainOfFirst + 1);
    expect(wire.sent[trainOfFirst]).toBe('Parse :UPDATE t SET n = $1');
    wire.answer(['parseComplete'], ['bindComplete'], ...ok('UPDATE 1'));
    await wire.sentCount(trainOfFirst + 6);
    expect(wire.sent[trainOfFirst + 5]).toBe('Query COMMIT');
    wire.answer(...ok('COMMIT'));
    await expect(done).resolves.toEqual([[], [[], 1]]);
  });

  it('rejects, and rings no hook, when COMMIT answers ROLLBACK (a statement failed and `work` caught its error)', async () => {
    const { wire, dataSource } = await harness();
    const rung: string[] = [];
    const done = runInTransaction(dataSource, async (sql) => {
      sql.afterCommit(() => void rung.push('hook'));
      await sql.query('INSERT INTO t VALUES ($1)', [1]).catch(() => undefined);
      return 'reported as done';
    });
    await wire.sentCount(8);
    wire.answer(['parseComplete'], ['bindComplete'], ['commandComplete', { text: 'BEGIN' }], ['parseComplete'], ['errorMessage', { severity: 'ERROR', code: '23505', message: 'duplicate key' }], ['readyForQuery', { status: 'E' }]);
    await wire.sentCount(9);
    expect(wire.sent[8]).toBe('Query COMMIT');
    wire.answer(...ok('ROLLBACK'));
    await wire.sentCount(10);
    expect(wire.sent[9]).toBe('Query ROLLBACK');
    wire.answer(['notice', { severity: 'WARNING', message: 'there is no transaction in progress' }], ...ok('ROLLBACK'));
    await expect(done).rejects.toBeInstanceOf(QueryFailedError);
    await expect(done).rejects.toMatchObject({ code: '25P02', message: expect.stringContaining('rolled back') });
    expect(rung).toEqual([]);
  });

  it('a hook that throws does not fail the committed transaction, and the hooks after it run', async () => {
    const { wire, dataSource } = await harness();
    const rung: string[] = [];
    const done = runInTransaction(dataSource, async (sql) => {
      sql.afterCommit(() => {
        throw new TypeError('Invalid value used as weak map key');
      });
      sql.afterCommit(() => void rung.push('second'));
      return sql.query('SELECT 1 AS n');
    });
    await wire.sentCount(1);
    wire.answer(...ok('BEGIN'));
    await wire.sentCount(2);
    wire.answer(['rowDescription', INT4], ['dataRow', { fields: ['1'] }], ...ok('SELECT 1'));
    await wire.sentCount(3);
    expect(wire.sent[2]).toBe('Query COMMIT');
    wire.answer(...ok('COMMIT'));
    await expect(done).resolves.toEqual([{ n: 1 }]);
    expect(rung).toEqual(['second']);
  });
});
