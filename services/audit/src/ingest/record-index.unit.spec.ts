import type { IndexRow } from './index-rows';
import { RecordIndex } from './record-index';
import type { RecordsRepository } from './records.repository';
import { testIndexRow } from '../../test/index-row';

/** How RecordIndex.index chooses between COPY (`append`) and the insert, without PostgreSQL. */
describe('RecordIndex.index', () => {
  /** A repository that records its calls, each in the transaction (numbered) it was given. */
  function setup(append: () => Promise<boolean>) {
    const calls: string[] = [];
    let transaction = 0;
    const transactions = { inTransaction: <T>(work: (tx: never) => Promise<T>) => work(++transaction as never) };
    const records = {
      append: jest.fn(async (tx: number, _topic: string, rows: readonly IndexRow[]) => {
        calls.push(`${tx}:append ${rows.map((r) => r.seq).join(',')}`);
        return append();
      }),
      insert: jest.fn(async (tx: number, _topic: string, rows: readonly IndexRow[]) => void calls.push(`${tx}:insert ${rows.map((r) => r.seq).join(',')}`)),
      quarantine: jest.fn(async (tx: number, _topic: string, rows: ReadonlyArray<{ row: IndexRow }>) => {
        calls.push(`${tx}:quarantine ${rows.map((q) => q.row.seq).join(',')}`);
        return [...rows];
      }),
    };
    const quarantined: number[][] = [];
    const index = new RecordIndex(transactions, records as unknown as RecordsRepository, 'audit', (rows) => quarantined.push(rows.map((q) => q.row.seq)));
    return { index, calls, quarantined };
  }
  const rows = [testIndexRow(1), testIndexRow(2, { occurredAt: '0000-01-01T00:00:00.000Z' }), testIndexRow(3)];

  it('appends by COPY, with the quarantine in the same transaction', async () => {
    const { index, calls, quarantined } = setup(async () => true);
    await index.index(rows);
    expect(calls).toEqual(['1:append 1,3', '1:quarantine 2']);
    expect(quarantined).toEqual([[2]]);
  });

  it('inserts in the same transaction when the rows cannot go by COPY', async () => {
    const { index, calls } = setup(async () => false);
    await index.index(rows);
    expect(calls).toEqual(['1:append 1,3', '1:insert 1,3', '1:quarantine 2']);
  });

  it('redoes the whole transaction by insert when COPY met a row already indexed (23505), as PostgreSQL or TypeORM reports it', async () => {
    for (const error of [Object.assign(new Error('duplicate key'), { code: '23505' }), Object.assign(new Error('failed'), { driverError: { code: '23505' } })]) {
      const { index, calls, quarantined } = setup(async () => Promise.reject(error));
      await index.index(rows);
      expect(calls).toEqual(['1:append 1,3', '2:insert 1,3', '2:quarantine 2']);
      expect(quarantined).toEqual([[2]]);
    }
  });

  it('fails on any other error, without redoing (the writer recovers from the topic)', async () => {
    const { index, calls, quarantined } = setup(async () => Promise.reject(Object.assign(new Error('invalid input syntax for type uuid'), { code: '22P02' })));
    await expect(index.index(rows)).rejects.toThrow('invalid input syntax');
    expect(calls).toEqual(['1:append 1,3']);
    expect(quarantined).toEqual([]);
  });
});
