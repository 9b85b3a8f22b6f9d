import { PalisadeError } from '@palisade/contracts';
import { accountKey, decide, type Account, type Hold, type LedgerCommand } from './ledger.decider';

const now = new Date('2026-12-03T10:00:00.000Z');
const settleDefaults = { revision: 0, occurredAt: null, accountKeys: [] as string[] };
const account = (level: Account['level'], limit: bigint, over: Partial<Account> = {}): Account => ({
  budgetId: `00000000-0000-7000-8000-00000000000${{ tenant: 1, team: 2, user: 3, agent: 4 }[level]}`,
  level,
  subjectId: level,
  periodStart: new Date('2026-12-01T00:00:00.000Z'),
  periodEnd: new Date('2027-01-01T00:00:00.000Z'),
  limit,
  hard: true,
  thresholds: [50, 80, 100],
  posted: 0n,
  pending: 0n,
  ...over,
});

function ledger(...accounts: Account[]) {
  const map = new Map(accounts.map((a) => [accountKey(a), a]));
  const holds = new Map<string, Hold>();
  const run = (command: LedgerCommand) => {
    const d = decide(command, holds.get(command.requestId), map);
    if (d.hold) holds.set(command.requestId, d.hold);
    for (const a of d.accounts) map.set(accountKey(a), a);
    return d;
  };
  const reserve = (requestId: string, amount: bigint) =>
    run({ type: 'reserve', tenantId: 'acme', requestId, agentId: 'agent', teamId: 'team', amount, ttlMs: 30_000, now, accountKeys: accounts.map(accountKey) });
  const of = (level: Account['level']) => [...map.values()].find((a) => a.level === level)!;
  return { run, reserve, of, holds };
}

const refusalOf = (f: () => unknown): PalisadeError => {
  try {
    f();
  } catch (e) {
    return e as PalisadeError;
  }
  throw new Error('no refusal');
};

describe('ledger decider', () => {
  it('holds the amount on every level at once and refuses naming the level without headroom', () => {
    const l = ledger(account('tenant', 1000n), account('team', 500n), account('agent', 300n));
    expect(l.reserve('r1', 200n).answer).toMatchObject({ status: 'reserved', amountMicros: '200' });
    expect([l.of('tenant').pending, l.of('team').pending, l.of('agent').pending]).toEqual([200n, 200n, 200n]);
    const refused = l.reserve('r2', 200n);
    expect(refused.answer).toMatchObject({ status: 'refused', level: 'agent', limitMicros: '300', pendingMicros: '200', availableMicros: '100', resetsAt: '2027-01-01T00:00:00.000Z' });
    expect(refused.events[0].type).toBe('billing.hold.refused');
    // all or nothing: nothing moved on tenant or team
    expect([l.of('tenant').pending, l.of('team').pending]).toEqual([200n, 200n]);
  });

  it('names the first level in order tenant, team, agent', () => {
    const l = ledger(account('tenant', 100n), account('team', 50n), account('agent', 10n));
    expect(l.reserve('r', 200n).answer).toMatchObject({ status: 'refused', level: 'tenant' });
  });

  it('charges the user an agent acts for as a level of its own, in lock order tenant, team, user, agent', () => {
    const l = ledger(account('agent', 500n), account('user', 100n), account('tenant', 1000n), account('team', 500n));
    expect(l.reserve('r1', 80n).answer.status).toBe('reserved');
    expect(l.of('user').pending).toBe(80n);
    expect(l.reserve('r2', 80n).answer).toMatchObject({ status: 'refused', level: 'user', availableMicros: '20' });
  });

  it('a soft budget never refuses', () => {
    const l = ledger(account('agent', 10n, { hard: false }));
    expect(l.reserve('r', 200n).answer.status).toBe('reserved');
  });

  it('a retry returns the first answer, whatever the ledger holds now', () => {
    const l = ledger(account('agent', 100n));
    const first = l.reserve('r', 80n).answer;
    expect(l.reserve('r', 10n)).toEqual({ answer: first, events: [], hold: null, accounts: [] });
    const refusedFirst = l.reserve('x', 90n).answer;
    l.run({ type: 'release', tenantId: 'acme', requestId: 'r', now });
    expect(l.reserve('x', 90n).answer).toEqual(refusedFirst);
  });

  it('settles the actual, releases the rest, and answers a second settle with the first answer', () => {
    const l = ledger(account('tenant', 1000n), account('agent', 100n));
    l.reserve('r', 80n);
    const s = l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'r', actual: 30n, model: 'm', usage: [], now });
    expect(s.answer).toEqual({ status: 'settled', requestId: 'r', postedMicros: '30', overrunMicros: '0', releasedMicros: '50', late: false, revision: 0 });
    expect([l.of('agent').posted, l.of('agent').pending]).toEqual([30n, 0n]);
    // the settled event says only what the stream's reserved event does not (its accounts are there)
    expect(Object.keys(s.events[0].data).sort()).toEqual(['actualMicros', 'agentId', 'late', 'model', 'overrunMicros', 'postedMicros', 'requestId', 'reservedMicros', 'teamId', 'usage']);
    expect(l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'r', actual: 99n, model: 'm', usage: [], now }).answer).toEqual(s.answer);
  });

  it('posts an actual above the hold only as far as the hard budgets allow; the rest is overrun, never posted', () => {
    const l = ledger(account('agent', 100n));
    l.reserve('a', 50n);
    l.reserve('b', 30n);
    const s = l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'a', actual: 90n, model: null, usage: [], now });
    expect(s.answer).toMatchObject({ postedMicros: '70', overrunMicros: '20' });
    const a = l.of('agent');
    expect(a.posted + a.pending).toBeLessThanOrEqual(a.limit);
  });

  it('emits each threshold once when posted spending crosses it', () => {
    const l = ledger(account('agent', 100n));
    l.reserve('a', 60n);
    const s = l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'a', actual: 85n, model: null, usage: [], now });
    expect(s.events.filter((e) => e.type === 'billing.budget.threshold_crossed').map((e) => e.data)).toEqual([
      expect.objectContaining({ threshold: 50 }),
      expect.objectContaining({ threshold: 80 }),
    ]);
  });

  it('expire releases only holds past their TTL; release after settle changes nothing', () => {
    const l = ledger(account('agent', 100n));
    l.reserve('a', 60n);
    expect(l.run({ type: 'expire', tenantId: 'acme', requestId: 'a', now }).events).toEqual([]);
    const later = new Date(now.getTime() + 31_000);
    const e = l.run({ type: 'expire', tenantId: 'acme', requestId: 'a', now: later });
    expect(e.answer).toMatchObject({ status: 'expired', releasedMicros: '60' });
    expect(l.of('agent').pending).toBe(0n);
    const late = l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'a', actual: 20n, model: null, usage: [], now: later });
    expect(late.answer).toMatchObject({ postedMicros: '20', late: true });
    expect(l.run({ type: 'release', tenantId: 'acme', requestId: 'a', now: later }).answer).toMatchObject({ status: 'settled', releasedMicros: '0' });
  });

  it('refuses bad amounts, settles of refused or released holds, and unknown holds', () => {
    const l = ledger(account('agent', 100n));
    expect(refusalOf(() => l.reserve('z', 0n)).code).toBe('validation');
    l.reserve('big', 1000n);
    expect(refusalOf(() => l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'big', actual: 1n, model: null, usage: [], now })).code).toBe('illegal_state');
    l.reserve('r', 10n);
    l.run({ type: 'release', tenantId: 'acme', requestId: 'r', now });
    expect(refusalOf(() => l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'r', actual: 1n, model: null, usage: [], now })).code).toBe('illegal_state');
    expect(refusalOf(() => l.run({ type: 'release', tenantId: 'acme', requestId: 'nope', now })).code).toBe('not_found');
  });

  it('posts a usage billing held nothing for late, in the period of its time, not of its arrival; a retry changes nothing', () => {
    const november = account('agent', 100n, { periodStart: new Date('2026-11-01T00:00:00.000Z'), periodEnd: new Date('2026-12-01T00:00:00.000Z') });
    const december = account('agent', 100n);
    const l = ledger(november, december);
    const usage = { ...settleDefaults, type: 'settle' as const, tenantId: 'acme', requestId: 'old', actual: 40n, model: 'm', usage: [], now, agentId: 'agent', teamId: 'team', occurredAt: new Date('2026-11-30T23:00:00.000Z'), accountKeys: [accountKey(november)] };
    const s = l.run(usage);
    expect(s.answer).toMatchObject({ status: 'settled', postedMicros: '40', late: true });
    expect(s.line).toEqual({ revision: 0, posted: 40n, actual: 40n, overrun: 0n, occurredAt: usage.occurredAt });
    // no reserved event names its accounts: its settled event does
    expect(s.events[0].data).toMatchObject({ accounts: [{ level: 'agent', budgetId: november.budgetId, periodStart: '2026-11-01T00:00:00.000Z' }] });
    const posted = [...s.accounts.values()].map((a) => [a.periodStart.toISOString(), a.posted]);
    expect(posted).toEqual([['2026-11-01T00:00:00.000Z', 40n]]);
    expect(l.run(usage)).toMatchObject({ answer: s.answer, accounts: [], hold: null });
    // without an agent to charge, a usage with no hold is refused for good, as before
    expect(refusalOf(() => l.run({ ...usage, requestId: 'nobody', agentId: null })).code).toBe('not_found');
  });

  it('corrects a settled usage by a higher revision: posted becomes the corrected total; the lines are the differences and sum to it; an older revision changes nothing', () => {
    const l = ledger(account('tenant', 1000n), account('agent', 100n));
    l.reserve('r', 80n);
    const settle = (actual: bigint, revision: number) => l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'r', actual, model: 'm', usage: [], now, revision });
    const lines = [settle(30n, 0).line!, settle(50n, 1).line!];
    expect([l.of('agent').posted, l.of('tenant').posted, l.of('agent').pending]).toEqual([50n, 50n, 0n]);
    const down = settle(10n, 2);
    expect(down.answer).toMatchObject({ postedMicros: '10', overrunMicros: '0', revision: 2 });
    expect(down.events[0]).toMatchObject({ type: 'billing.hold.settled', data: { postedMicros: '10', previousPostedMicros: '50', revision: 2 } });
    lines.push(down.line!);
    expect(lines.map((x) => x.posted)).toEqual([30n, 20n, -40n]);
    expect(lines.reduce((sum, x) => sum + x.posted, 0n)).toBe(l.of('agent').posted);
    expect(lines.reduce((sum, x) => sum + x.actual, 0n)).toBe(10n);
    expect(settle(999n, 1)).toMatchObject({ answer: down.answer, accounts: [], hold: null });
    // a correction that arrives before the usage it corrects settles it; the late original then changes nothing
    const m = ledger(account('agent', 100n));
    m.reserve('q', 80n);
    const first = m.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'q', actual: 20n, model: null, usage: [], now, revision: 1 });
    expect(first.line).toMatchObject({ revision: 0, posted: 20n });
    expect(m.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'q', actual: 70n, model: null, usage: [], now })).toMatchObject({ answer: first.answer, hold: null });
    expect(l.of('agent').posted).toBe(10n);
  });

  it('caps a correction upwards by the headroom of the hard levels, as a settle is', () => {
    const l = ledger(account('agent', 100n));
    l.reserve('a', 50n);
    l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'a', actual: 50n, model: null, usage: [], now });
    l.reserve('b', 40n);
    const c = l.run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId: 'a', actual: 90n, model: null, usage: [], now, revision: 1 });
    expect(c.answer).toMatchObject({ postedMicros: '60', overrunMicros: '30' });
    expect(c.line).toMatchObject({ posted: 10n, actual: 40n, overrun: 30n });
    const a = l.of('agent');
    expect([a.posted, a.pending]).toEqual([60n, 40n]);
  });
});

describe('ledger decider: allotments', () => {
  /** A ledger whose settles may name an allotment (the batch hands the decider the allotment's hold). */
  function allotting(...accounts: Account[]) {
    const map = new Map(accounts.map((a) => [accountKey(a), a]));
    const holds = new Map<string, Hold>();
    const run = (command: LedgerCommand) => {
      const allotmentId = command.type === 'settle' ? command.allotmentId : undefined;
      const d = decide(command, holds.get(command.requestId), map, allotmentId ? holds.get(allotmentId) : undefined);
      if (d.hold) holds.set(command.requestId, d.hold);
      if (d.allotment) holds.set(d.allotment.requestId, d.allotment);
      for (const a of d.accounts) map.set(accountKey(a), a);
      return d;
    };
    const reserveCommand = { type: 'reserve' as const, tenantId: 'acme', agentId: 'agent', teamId: 'team', ttlMs: 30_000, now, accountKeys: accounts.map(accountKey) };
    const allot = (requestId: string, amount: bigint, minAmount: bigint) => run({ ...reserveCommand, requestId, amount, minAmount });
    const reserve = (requestId: string, amount: bigint) => run({ ...reserveCommand, requestId, amount });
    const settle = (requestId: string, actual: bigint, allotmentId: string | null, at = now) =>
      run({ ...settleDefaults, type: 'settle', tenantId: 'acme', requestId, actual, model: 'm', usage: [], now: at, allotmentId });
    const of = (level: Account['level']) => map.get(accountKey(accounts.find((a) => a.level === level)!))!;
    /** posted + pending ≤ limit on every hard account, pending = what held holds hold, posted = what settled holds posted. */
    const invariants = () => {
      for (const a of map.values()) {
        if (a.hard) expect(a.posted + a.pending).toBeLessThanOrEqual(a.limit);
        const mine = [...holds.values()].filter((h) => h.accounts.some((x) => accountKey(x) === accountKey(a)));
        expect(mine.filter((h) => h.status === 'held').reduce((s, h) => s + h.amount, 0n)).toBe(a.pending);
        expect(mine.reduce((s, h) => s + h.posted, 0n)).toBe(a.posted);
      }
    };
    return { run, allot, reserve, settle, of, holds, invariants };
  }

  it('grants all that is asked where every hard level has room for it, as one hold on every level', () => {
    const l = allotting(account('tenant', 10_000n), account('team', 5_000n), account('agent', 2_000n));
    const d = l.allot('al-1', 800n, 100n);
    expect(d.answer).toMatchObject({ status: 'reserved', requestId: 'al-1', amountMicros: '800' });
    expect(d.hold).toMatchObject({ kind: 'allotment', status: 'held', amount: 800n });
    expect(d.events[0]).toMatchObject({ type: 'billing.hold.reserved', data: { allotment: true, amountMicros: '800', askedMicros: '800' } });
    expect([l.of('tenant').pending, l.of('team').pending, l.of('agent').pending]).toEqual([800n, 800n, 800n]);
    l.invariants();
  });

  it('grants at most half the least headroom of its hard levels (one scope never takes the headroom others need), at least the asking request\'s own worst case, else refuses as a reserve of it is', () => {
    const l = allotting(account('tenant', 10_000n), account('agent', 1_000n));
    l.reserve('other', 500n);
    // 800 asked, 500 left on the agent: half of it
    expect(l.allot('al-1', 800n, 100n).answer).toMatchObject({ status: 'reserved', amountMicros: '250' });
    expect(l.holds.get('al-1')?.reserveAnswer).toMatchObject({ amountMicros: '250' });
    // 250 left: half is 125, below the request's own 200: 200
    expect(l.allot('al-2', 800n, 200n).answer).toMatchObject({ status: 'reserved', amountMicros: '200' });
    expect(l.of('agent').pending).toBe(950n);
    const refused = l.allot('al-3', 800n, 100n);
    expect(refused.answer).toEqual({
      status: 'refused',
      requestId: 'al-3',
      level: 'agent',
      budgetId: l.of('agent').budgetId,
      limitMicros: '1000',
      postedMicros: '0',
      pendingMicros: '950',
      availableMicros: '50',
      resetsAt: '2027-01-01T00:00:00.000Z',
    });
    expect(refused.events[0]).toMatchObject({ type: 'billing.hold.refused', data: { allotment: true, amountMicros: '100' } });
    expect(l.of('agent').pending).toBe(950n);
    // a retried allotment request gets its first answer
    expect(l.allot('al-1', 10n, 10n).answer).toMatchObject({ amountMicros: '250' });
    expect(refusalOf(() => l.allot('bad', 100n, 200n)).code).toBe('validation');
    expect(refusalOf(() => l.allot('bad', 100n, 0n)).code).toBe('validation');
    l.invariants();
  });

  it('a request settled against an allotment posts its cost and lowers the allotment by as much; its own hold and usage line are made then; a retry changes nothing', () => {
    const l = allotting(account('tenant', 10_000n), account('agent', 2_000n));
    l.allot('al', 800n, 100n);
    const s = l.settle('r1', 70n, 'al');
    expect(s.answer).toEqual({ status: 'settled', requestId: 'r1', postedMicros: '70', overrunMicros: '0', releasedMicros: '0', late: false, revision: 0 });
    expect(s.hold).toMatchObject({ kind: 'request', allotmentId: 'al', status: 'settled', amount: 70n, posted: 70n, version: 1, agentId: 'agent', teamId: 'team' });
    expect(s.allotment).toMatchObject({ requestId: 'al', status: 'held', amount: 730n, posted: 0n });
    expect(s.line).toMatchObject({ revision: 0, posted: 70n, actual: 70n, overrun: 0n });
    // the request's stream has no reserved event: its settled event names the accounts and the allotment
    expect(s.events[0]).toMatchObject({ type: 'billing.hold.settled', data: { requestId: 'r1', reservedMicros: '70', allotmentId: 'al', accounts: l.holds.get('al')!.accounts } });
    expect([l.of('agent').posted, l.of('agent').pending]).toEqual([70n, 730n]);
    l.invariants();
    // a retried settle (or the usage event after it): the first answer, the allotment untouched
    expect(l.settle('r1', 70n, 'al')).toMatchObject({ answer: s.answer, hold: null, accounts: [] });
    expect(l.settle('r1', 70n, null)).toMatchObject({ answer: s.answer, hold: null, accounts: [] });
    expect(l.holds.get('al')!.amount).toBe(730n);
    // an allotment is not settled itself
    expect(refusalOf(() => l.settle('al', 1n, null)).code).toBe('illegal_state');
    l.invariants();
  });

  it('exhausting an allotment: a cost beyond what it holds is posted as far as the hard levels allow, the rest overrun; never past the limit', () => {
    const l = allotting(account('agent', 1_000n));
    l.allot('al', 300n, 100n);
    l.reserve('other', 650n);
    l.settle('a', 250n, 'al');
    // 50 left in the allotment, 50 of headroom besides it: 100 posted of 120
    const s = l.settle('b', 120n, 'al');
    expect(s.answer).toMatchObject({ postedMicros: '100', overrunMicros: '20' });
    expect(l.holds.get('al')!.amount).toBe(0n);
    expect([l.of('agent').posted, l.of('agent').pending]).toEqual([350n, 650n]);
    l.invariants();
  });

  it('release returns the remainder; expiry does too, only past the TTL; a settle after the allotment ended is late, on its accounts', () => {
    const l = allotting(account('tenant', 10_000n), account('agent', 2_000n));
    l.allot('al', 800n, 100n);
    l.settle('r1', 100n, 'al');
    const released = l.run({ type: 'release', tenantId: 'acme', requestId: 'al', now });
    expect(released.answer).toEqual({ status: 'released', requestId: 'al', releasedMicros: '700' });
    expect([l.of('agent').posted, l.of('agent').pending, l.of('tenant').pending]).toEqual([100n, 0n, 0n]);
    expect(l.run({ type: 'release', tenantId: 'acme', requestId: 'al', now }).answer).toEqual(released.answer);
    const late = l.settle('r2', 60n, 'al');
    expect(late.answer).toMatchObject({ postedMicros: '60', late: true });
    expect(late.allotment).toBeUndefined();
    expect(late.hold).toMatchObject({ allotmentId: 'al', amount: 0n, status: 'settled' });
    expect([l.of('agent').posted, l.of('tenant').posted]).toEqual([160n, 160n]);
    l.invariants();

    l.allot('al2', 500n, 100n);
    expect(l.run({ type: 'expire', tenantId: 'acme', requestId: 'al2', now }).events).toEqual([]);
    l.settle('r3', 40n, 'al2');
    const expired = l.run({ type: 'expire', tenantId: 'acme', requestId: 'al2', now: new Date(now.getTime() + 30_000) });
    expect(expired.answer).toMatchObject({ status: 'expired', releasedMicros: '460' });
    expect(l.of('agent').pending).toBe(0n);
    l.invariants();
  });

  it('a usage event naming the allotment (metering) settles against it whichever of it and the settle request comes first: one draw, the second meets the first answer', () => {
    const l = allotting(account('agent', 1_000n));
    l.allot('al', 500n, 100n);
    const usage = { ...settleDefaults, type: 'settle' as const, tenantId: 'acme', requestId: 'r', actual: 40n, model: 'm', usage: [], agentId: 'agent', allotmentId: 'al', accountKeys: [accountKey(l.of('agent'))], now };
    const first = l.run(usage);
    expect(first.answer).toMatchObject({ status: 'settled', postedMicros: '40', late: false });
    const drawn = l.settle('r', 40n, 'al');
    expect(drawn.answer).toEqual(first.answer);
    expect(drawn.hold).toBeNull();
    l.invariants();
    // an event naming the allotment of another agent draws nothing from it
    expect(refusalOf(() => l.run({ ...usage, requestId: 'r2', agentId: 'other-agent' }))).toMatchObject({ code: 'validation' });
    expect(l.holds.has('r2')).toBe(false);
  });

  it('a settle naming an allotment billing does not have: not found, or late on the agent\'s accounts when it names one', () => {
    const l = allotting(account('agent', 1_000n));
    expect(refusalOf(() => l.settle('r', 10n, 'nope')).code).toBe('not_found');
    // a plain request's hold is no allotment
    l.reserve('plain', 100n);
    expect(refusalOf(() => l.settle('r', 10n, 'plain')).code).toBe('not_found');
  });

  it('keeps the invariant through a random run of allotments, draws, plain holds, releases and expiries', () => {
    const l = allotting(account('tenant', 5_000n), account('team', 3_000n), account('agent', 2_000n));
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const allotments: string[] = [];
    for (let i = 0; i < 400; i++) {
      const op = rand(6);
      const later = new Date(now.getTime() + rand(60_000));
      if (op === 0) {
        const d = l.allot(`al-${i}`, BigInt(100 + rand(900)), BigInt(1 + rand(100)));
        if (d.answer.status === 'reserved') allotments.push(`al-${i}`);
      } else if (op <= 2 && allotments.length) l.settle(`r-${i}`, BigInt(rand(300)), allotments[rand(allotments.length)], later);
      else if (op === 3) l.reserve(`p-${i}`, BigInt(1 + rand(200)));
      else if (op === 4 && allotments.length) l.run({ type: 'release', tenantId: 'acme', requestId: allotments[rand(allotments.length)], now: later });
      else if (allotments.length) l.run({ type: 'expire', tenantId: 'acme', requestId: allotments[rand(allotments.length)], now: later });
      l.invariants();
    }
  });
});
