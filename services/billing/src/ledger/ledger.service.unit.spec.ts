import { systemEventContext } from '@palisade/contracts';
import type { Account, Hold } from './ledger.decider';
import type { BudgetRow } from './ledger.repository';
import { LedgerService, type LedgerServiceDependencies } from './ledger.service';

const budget: BudgetRow = {
  budgetId: '00000000-0000-7000-8000-000000000004',
  tenantId: 'acme',
  level: 'agent',
  subjectId: 'bot',
  limit: 1000n,
  period: 'none',
  timeZone: 'UTC',
  hard: true,
  thresholds: [],
};

/** The service over an in-memory repository: only what a reserve needs. */
function serviceWith(budgetsOf: jest.Mock) {
  const accounts = new Map<string, Account>();
  const repo = {
    inTransaction: async <T>(work: (tx: never) => Promise<T>) => work(undefined as never),
    budgetsOf,
    openPeriods: async () => undefined,
    lock: async (_tx: unknown, _holds: unknown, keys: ReadonlyArray<{ budgetId: string; periodStart: Date }>) => ({
      holds: new Map(),
      accounts: keys.map((k) => accounts.get(k.budgetId) ?? { ...budget, periodStart: k.periodStart, periodEnd: null, posted: 0n, pending: 0n }),
    }),
    write: async (_tx: unknown, w: { accounts: Array<{ after: Account }> }) => {
      for (const { after } of w.accounts) accounts.set(after.budgetId, after);
    },
    expiredHolds: async () => [],
    currentAccounts: async () => [],
  } as unknown as LedgerServiceDependencies['repo'];
  return { ledger: new LedgerService({ repo, eventContext: systemEventContext('billing'), budgetCacheMs: 1000 }), accounts, repo };
}

describe('ledger service: remembered budgets', () => {
  afterEach(() => jest.restoreAllMocks());

  it('a reservation never waits for a budget refresh: past the cache time the entry is used while one read runs in the background', async () => {
    let clock = 1_000_000;
    jest.spyOn(Date, 'now').mockImplementation(() => clock);
    let finishRefresh: (rows: BudgetRow[]) => void = () => undefined;
    const budgetsOf = jest
      .fn()
      .mockResolvedValueOnce([budget])
      .mockImplementationOnce(() => new Promise<BudgetRow[]>((resolve) => (finishRefresh = resolve)))
      .mockResolvedValue([]);
    const { ledger, accounts } = serviceWith(budgetsOf);
    const reserve = (requestId: string) => ledger.reserve('llm-router', { tenantId: 'acme', requestId, agentId: 'bot', amountMicros: '100', ttlMs: 60_000 });
    expect(await reserve('r1')).toMatchObject({ status: 'reserved' });
    clock += 1500; // past the cache time
    // answered on the remembered budget although its refresh has not come back (without this it would wait for it)
    expect(await reserve('r2')).toMatchObject({ status: 'reserved' });
    expect(await reserve('r3')).toMatchObject({ status: 'reserved' });
    expect(budgetsOf).toHaveBeenCalledTimes(2); // one refresh in flight, not one per batch
    expect(accounts.get(budget.budgetId)?.pending).toBe(300n);
    finishRefresh([]); // the budget was removed meanwhile: once read, it is no longer charged
    await new Promise((r) => setImmediate(r));
    expect(await reserve('r4')).toMatchObject({ status: 'reserved' });
    expect(accounts.get(budget.budgetId)?.pending).toBe(300n);
  });

  it('forgets what it remembered when this instance changes a budget, and does not keep a read that started before the change', async () => {
    jest.spyOn(Date, 'now').mockReturnValue(1_000_000);
    let finishRead: (rows: BudgetRow[]) => void = () => undefined;
    const budgetsOf = jest
      .fn()
      .mockImplementationOnce(() => new Promise<BudgetRow[]>((resolve) => (finishRead = resolve)))
      .mockResolvedValue([budget]);
    const { ledger } = serviceWith(budgetsOf);
    const reserve = (requestId: string) => ledger.reserve('llm-router', { tenantId: 'acme', requestId, agentId: 'bot', amountMicros: '1', ttlMs: 60_000 });
    const first = reserve('a');
    await new Promise((r) => setImmediate(r));
    ledger.forgetBudgets(); // a budget was set while that read was on its way
    finishRead([]);
    await first;
    await reserve('b');
    await reserve('c');
    expect(budgetsOf).toHaveBeenCalledTimes(2); // read again after the change, then remembered
  });
});

describe('ledger service: the attempt on remembered rows', () => {
  /** A service that remembers its rows (one reserve went through the lock), and spies on the next batch. */
  async function remembering() {
    const { ledger, repo } = serviceWith(jest.fn().mockResolvedValue([budget]));
    const reserve = (requestId: string) => ledger.reserve('llm-router', { tenantId: 'acme', requestId, agentId: 'bot', amountMicros: '100', ttlMs: 60_000 });
    expect(await reserve('r1')).toMatchObject({ status: 'reserved' });
    return { reserve, lock: jest.spyOn(repo, 'lock'), write: jest.spyOn(repo, 'write') };
  }

  it('a write that finds its rows changed (40L01) is decided again on locked rows', async () => {
    const { reserve, lock, write } = await remembering();
    write.mockRejectedValueOnce(Object.assign(new Error('ledger rows changed since this instance remembered them'), { code: '40L01' }));
    expect(await reserve('r2')).toMatchObject({ status: 'reserved' });
    expect([write.mock.calls.length, lock.mock.calls.length]).toEqual([2, 1]);
  });

  it('a deadlock (40P01) or serialization failure (40001) of that write is decided again on locked rows, as the locked transaction would retry it', async () => {
    for (const code of ['40P01', '40001']) {
      const { reserve, lock, write } = await remembering();
      write.mockRejectedValueOnce(Object.assign(new Error('deadlock detected'), { code }));
      expect(await reserve('r2')).toMatchObject({ status: 'reserved', amountMicros: '100' });
      expect([write.mock.calls.length, lock.mock.calls.length]).toEqual([2, 1]);
      jest.restoreAllMocks();
    }
  });

  it('any other failure of that write fails the batch as it is, without a second attempt under the lock', async () => {
    const { reserve, lock, write } = await remembering();
    for (const failure of [
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('new row violates check constraint'), { code: '23514', constraint: 'budget_periods_within_limit' }),
      new Error('event billing.hold.reserved is malformed'),
    ]) {
      write.mockClear();
      lock.mockClear();
      write.mockRejectedValueOnce(failure);
      await expect(reserve(`r-${failure.message}`)).rejects.toBe(failure);
      expect([write.mock.calls.length, lock.mock.calls.length]).toEqual([1, 0]);
    }
  });
});

describe('ledger service: the sweeper', () => {
  it('one hold that cannot be expired does not keep the others held: a failed batch is tried again one at a time', async () => {
    const held = (requestId: string): Hold => ({
      tenantId: 'acme',
      requestId,
      agentId: 'bot',
      teamId: null,
      amount: 100n,
      status: 'held',
      accounts: [{ level: 'agent', budgetId: budget.budgetId, periodStart: '1970-01-01T00:00:00.000Z' }],
      expiresAt: new Date(0),
      posted: 0n,
      version: 1,
      reserveAnswer: { status: 'reserved', requestId, amountMicros: '100', expiresAt: new Date(0).toISOString() },
      settleAnswer: null,
      releaseAnswer: null,
      revision: 0,
      createdAt: new Date(0),
      updatedAt: new Date(0),
    });
    const due = ['a', 'bad', 'b', 'c'];
    let pending = 400n;
    const expired: string[] = [];
    const repo = {
      inTransaction: async <T>(work: (tx: never) => Promise<T>) => work(undefined as never),
      budgetsOf: async () => [],
      openPeriods: async () => undefined,
      lock: async (_tx: unknown, keys: ReadonlyArray<{ requestId: string }>) => ({
        holds: new Map(keys.map((k) => [`acme\u0000${k.requestId}`, held(k.requestId)])),
        accounts: [{ ...budget, periodStart: new Date(0), periodEnd: null, posted: 0n, pending }],
      }),
      write: async (_tx: unknown, w: { changedHolds: Array<{ hold: Hold }>; accounts: Array<{ after: Account }> }) => {
        if (w.changedHolds.some((c) => c.hold.requestId === 'bad')) throw Object.assign(new Error('check constraint'), { code: '23514' });
        expired.push(...w.changedHolds.map((c) => c.hold.requestId));
        pending = w.accounts[0].after.pending;
      },
      expiredHolds: async () => due.filter((id) => !expired.includes(id)).map((requestId) => ({ tenantId: 'acme', requestId })),
      currentAccounts: async () => [],
    } as unknown as LedgerServiceDependencies['repo'];
    const ledger = new LedgerService({ repo, eventContext: systemEventContext('billing') });
    expect(await ledger.expire()).toBe(3);
    expect(expired.sort()).toEqual(['a', 'b', 'c']);
    expect(pending).toBe(100n);
    expect(ledger.unexpirableHolds).toBe(1);
    // the next tick: new holds due expire in their batch, the unexpirable one kept out of it (tried alone after)
    due.push('d', 'e');
    pending += 200n;
    const writes: string[][] = [];
    const write = repo.write.bind(repo);
    repo.write = (async (tx: unknown, w: { changedHolds: Array<{ hold: Hold }>; accounts: Array<{ after: Account }> }) => {
      writes.push(w.changedHolds.map((c) => c.hold.requestId));
      return write(tx as never, w as never);
    }) as typeof repo.write;
    expect(await ledger.expire()).toBe(2);
    expect(writes[0].sort()).toEqual(['d', 'e']);
    expect(writes.slice(1)).toEqual([['bad']]);
    expect(ledger.unexpirableHolds).toBe(1);
  });
});

describe('ledger service: allotments are the router\'s', () => {
  it('another caller may neither ask for an allotment nor settle against one (forbidden, nothing held or drawn); the router may', async () => {
    const budgetsOf = jest.fn().mockResolvedValue([budget]);
    const { ledger, accounts } = serviceWith(budgetsOf);
    const allot = { tenantId: 'acme', requestId: 'al-1', agentId: 'bot', amountMicros: '400', minAmountMicros: '100', ttlMs: 60_000 };
    // (refused before it is batched: thrown as the amounts' validation is, a rejection to the RPC's caller)
    const refusal = (f: () => unknown) => Promise.resolve().then(f);
    await expect(refusal(() => ledger.reserve('sandbox-orchestrator', allot))).rejects.toMatchObject({ code: 'forbidden' });
    expect(accounts.get(budget.budgetId)).toBeUndefined();
    await expect(refusal(() => ledger.settle('sandbox-orchestrator', { tenantId: 'acme', requestId: 'r-1', actualMicros: '10', allotmentId: 'al-1' }))).rejects.toMatchObject({ code: 'forbidden' });
    expect(await ledger.reserve('llm-router', allot)).toMatchObject({ status: 'reserved', amountMicros: '400' });
    // a plain reservation stays open to every ledger caller
    expect(await ledger.reserve('sandbox-orchestrator', { tenantId: 'acme', requestId: 'r-2', agentId: 'bot', amountMicros: '50', ttlMs: 60_000 })).toMatchObject({ status: 'reserved' });
  });
});
