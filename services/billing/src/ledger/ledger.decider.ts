import { PalisadeError } from '@palisade/contracts';
import { thresholdEvent, thresholdsCrossed } from '../budgets/budgets.decider';
import { LEVEL_RANK, type Level } from '../budgets/budgets.events';
import type { HeldAccount, LedgerEvent, UsageQuantity } from './ledger.events';

/**
 * The ledger's rules, pure: reserve, settle, release and expire as decisions over the
 * locked budget period rows ("accounts") and the request's hold. No I/O, no clock: the
 * repository locks the rows, the service passes the time in, and the batch applies
 * decisions one after the other on the state they leave.
 *
 * Invariant kept by every decision: on every hard account, posted + pending ≤ limit.
 * (PostgreSQL checks it again: CHECK (NOT hard OR posted + pending <= limit_micros).)
 */

/** Largest amount one request may hold (10⁹ currency units in µ-units). */
export const MAX_AMOUNT_MICROS = 10n ** 15n;
export const MIN_TTL_MS = 1_000;
export const MAX_TTL_MS = 3_600_000;

/** One budget's row for one period: what the ledger locks, checks and moves. */
export interface Account {
  budgetId: string;
  level: Level;
  subjectId: string;
  periodStart: Date;
  periodEnd: Date | null;
  limit: bigint;
  hard: boolean;
  thresholds: readonly number[];
  posted: bigint;
  pending: bigint;
}

/** The key of an account: budget id and period start in epoch ms (a held account's ISO string and a row's Date give the same key). */
export const accountKey = (a: { budgetId: string; periodStart: Date | string }): string =>
  `${a.budgetId}|${typeof a.periodStart === 'string' ? Date.parse(a.periodStart) : a.periodStart.getTime()}`;

/** Lock order of accounts: tenant, team, agent, then budget id and period (a total order every path uses). */
export function compareAccounts(a: Pick<Account, 'level' | 'budgetId' | 'periodStart'>, b: Pick<Account, 'level' | 'budgetId' | 'periodStart'>): number {
  return LEVEL_RANK[a.level] - LEVEL_RANK[b.level] || (a.budgetId < b.budgetId ? -1 : a.budgetId > b.budgetId ? 1 : 0) || a.periodStart.getTime() - b.periodStart.getTime();
}

export type HoldStatus = 'held' | 'refused' | 'settled' | 'released' | 'expired';

export type ReserveAnswer =
  | { status: 'reserved'; requestId: string; amountMicros: string; expiresAt: string }
  | {
      status: 'refused';
      requestId: string;
      level: Level;
      budgetId: string;
      limitMicros: string;
      postedMicros: string;
      pendingMicros: string;
      availableMicros: string;
      resetsAt: string | null;
    };
export interface SettleAnswer {
  status: 'settled';
  requestId: string;
  /** What is posted for the request in all (after a correction: the corrected total). */
  postedMicros: string;
  overrunMicros: string;
  releasedMicros: string;
  late: boolean;
  /** The usage revision this answers (0: the original; a correction counts up). */
  revision?: number;
}
export interface ReleaseAnswer {
  status: 'released' | 'expired' | 'settled' | 'refused';
  requestId: string;
  releasedMicros: string;
}
export type LedgerAnswer = ReserveAnswer | SettleAnswer | ReleaseAnswer;

/** A request's hold, as stored: its state and the first answer of each operation (idempotency). */
export interface Hold {
  tenantId: string;
  requestId: string;
  agentId: string;
  teamId: string | null;
  amount: bigint;
  status: HoldStatus;
  accounts: HeldAccount[];
  expiresAt: Date;
  posted: bigint;
  /** Version of the stream `hold-<tenant>.<requestId>` (events appended so far). */
  version: number;
  reserveAnswer: ReserveAnswer;
  settleAnswer: SettleAnswer | null;
  releaseAnswer: ReleaseAnswer | null;
  /** The usage revision posted so far (0: the original settle; corrections count up). */
  revision: number;
  /** When the hold was made (for a hold-less late usage: the usage's time). */
  createdAt: Date;
  updatedAt: Date;
}

export interface ReserveCommand {
  type: 'reserve';
  tenantId: string;
  requestId: string;
  agentId: string;
  teamId: string | null;
  /** Only to find the user's budget (the repository resolves it into `accountKeys`). */
  userId?: string | null;
  amount: bigint;
  ttlMs: number;
  now: Date;
  /** The current period rows of the levels that have a budget (the repository resolved them). */
  accountKeys: readonly string[];
}
export interface SettleCommand {
  type: 'settle';
  tenantId: string;
  requestId: string;
  actual: bigint;
  model: string | null;
  usage: UsageQuantity[];
  now: Date;
  /** Usage revision: 0 the original; a higher one corrects what was posted to this total (a lower or equal one, once settled, gets the latest answer). */
  revision: number;
  /** When the usage happened (a usage event's time); the line is dated so, and a hold-less usage is posted in the period of this time. */
  occurredAt: Date | null;
  /** For a usage with no hold (late: billing never saw the reserve): the agent and its team, and the current-at-`occurredAt` period rows of their budgets (the service resolved them). */
  agentId?: string | null;
  teamId?: string | null;
  userId?: string | null;
  accountKeys: readonly string[];
}
export interface ReleaseCommand {
  type: 'release' | 'expire';
  tenantId: string;
  requestId: string;
  now: Date;
}
export type LedgerCommand = ReserveCommand | SettleCommand | ReleaseCommand;

/** What a decision changes: the answer, the events, the hold as it is now, the accounts it moved. */
export interface LedgerDecision {
  answer: LedgerAnswer;
  events: LedgerEvent[];
  /** The hold to store (unchanged hold: null, nothing to write). */
  hold: Hold | null;
  accounts: Account[];
  /** The usage line a settle appends: what it moved (a correction: the differences, possibly negative), so the lines of a request sum to its posted. */
  line?: UsageLineAmounts;
}

/** The amounts of one usage line and its revision and date. */
export interface UsageLineAmounts {
  revision: number;
  posted: bigint;
  actual: bigint;
  overrun: bigint;
  occurredAt: Date;
}

/** Accounts by key; a decision reads them and the batch applies its changed copies. */
export type Accounts = ReadonlyMap<string, Account>;

const str = (v: bigint) => v.toString();
const min = (a: bigint, b: bigint) => (a < b ? a : b);

export function decide(command: LedgerCommand, hold: Hold | undefined, accounts: Accounts): LedgerDecision {
  switch (command.type) {
    case 'reserve':
      return decideReserve(command, hold, accounts);
    case 'settle':
      return decideSettle(command, hold, accounts);
    default:
      return decideRelease(command, hold, accounts);
  }
}

function accountsOf(keys: readonly string[], accounts: Accounts): Account[] {
  return keys.map((k) => {
    const a = accounts.get(k);
    if (!a) throw new PalisadeError('internal', 'a budget row of the hold was not locked');
    return a;
  });
}

/**
 * Holds `amount` on every level at once, or on none: the first hard level (tenant, team,
 * user, agent) without headroom refuses, and is named. Soft budgets never refuse. A request id
 * seen before gets its first answer back, whatever the amounts now.
 */
export function decideReserve(c: ReserveCommand, hold: Hold | undefined, accounts: Accounts): LedgerDecision {
  if (hold) return { answer: hold.reserveAnswer, events: [], hold: null, accounts: [] };
  if (c.amount <= 0n || c.amount > MAX_AMOUNT_MICROS) throw new PalisadeError('validation', `amountMicros: must be between 1 and ${MAX_AMOUNT_MICROS}`);
  if (!Number.isInteger(c.ttlMs) || c.ttlMs < MIN_TTL_MS || c.ttlMs > MAX_TTL_MS) throw new PalisadeError('validation', `ttlMs: must be between ${MIN_TTL_MS} and ${MAX_TTL_MS}`);
  const held = accountsOf(c.accountKeys, accounts).sort(compareAccounts);
  const base = {
    tenantId: c.tenantId,
    requestId: c.requestId,
    agentId: c.agentId,
    teamId: c.teamId,
    amount: c.amount,
    expiresAt: new Date(c.now.getTime() + c.ttlMs),
    posted: 0n,
    settleAnswer: null,
    releaseAnswer: null,
    revision: 0,
    createdAt: c.now,
    updatedAt: c.now,
  };
  const short = held.find((a) => a.hard && a.posted + a.pending + c.amount > a.limit);
  if (short) {
    const available = short.limit - short.posted - short.pending;
    const answer: ReserveAnswer = {
      status: 'refused',
      requestId: c.requestId,
      level: short.level,
      budgetId: short.budgetId,
      limitMicros: str(short.limit),
      postedMicros: str(short.posted),
      pendingMicros: str(short.pending),
      availableMicros: str(available > 0n ? available : 0n),
      resetsAt: short.periodEnd?.toISOString() ?? null,
    };
    const { status: _s, availableMicros: _a, ...data } = answer;
    return {
      answer,
      events: [{ type: 'billing.hold.refused', data: { ...data, agentId: c.agentId, teamId: c.teamId, amountMicros: str(c.amount) } }],
      hold: { ...base, amount: 0n, status: 'refused', accounts: [], version: 1, reserveAnswer: answer },
      accounts: [],
    };
  }
  const heldAccounts: HeldAccount[] = held.map((a) => ({ level: a.level, budgetId: a.budgetId, periodStart: a.periodStart.toISOString() }));
  const answer: ReserveAnswer = { status: 'reserved', requestId: c.requestId, amountMicros: str(c.amount), expiresAt: base.expiresAt.toISOString() };
  return {
    answer,
    events: [
      {
        type: 'billing.hold.reserved',
        data: { requestId: c.requestId, agentId: c.agentId, teamId: c.teamId, amountMicros: str(c.amount), expiresAt: answer.expiresAt, accounts: heldAccounts },
      },
    ],
    hold: { ...base, status: 'held', accounts: heldAccounts, version: 1, reserveAnswer: answer },
    accounts: held.map((a) => ({ ...a, pending: a.pending + c.amount })),
  };
}

/**
 * Posts the actual cost and releases the hold, on every level the hold was charged to.
 * What is posted is the actual cost capped by the headroom of the hard levels once the
 * hold is released: never less than the hold itself, so an actual within the hold is
 * always posted whole; the rest is the `overrun`, recorded on the usage line and never
 * posted (posted + pending ≤ limit holds). A hold that already expired is settled
 * `late` the same way with nothing held; so is a usage billing holds nothing for (the
 * reserve never reached it), on the accounts of the period of the usage's time. A second
 * settle gets the first answer; a higher `revision` corrects (`decideCorrection`).
 */
export function decideSettle(c: SettleCommand, hold: Hold | undefined, accounts: Accounts): LedgerDecision {
  if (c.actual < 0n || c.actual > MAX_AMOUNT_MICROS) throw new PalisadeError('validation', `actualMicros: must be between 0 and ${MAX_AMOUNT_MICROS}`);
  if (!Number.isInteger(c.revision) || c.revision < 0) throw new PalisadeError('validation', 'revision: must be a whole number ≥ 0');
  if (!hold) {
    if (!c.agentId) throw new PalisadeError('not_found', 'hold not found');
    hold = usageWithoutHold(c, accounts);
  }
  if (hold.status === 'settled') return c.revision > hold.revision ? decideCorrection(c, hold, accounts) : { answer: hold.settleAnswer!, events: [], hold: null, accounts: [] };
  if (hold.status === 'refused') throw new PalisadeError('illegal_state', 'the reservation was refused: nothing to settle');
  if (hold.status === 'released') throw new PalisadeError('illegal_state', 'the hold was released: nothing to settle');
  const late = hold.status === 'expired';
  const heldAmount = late ? 0n : hold.amount;
  const rows = accountsOf(hold.accounts.map(accountKey), accounts);
  let cap = c.actual;
  for (const a of rows) if (a.hard) cap = min(cap, a.limit - a.posted - (a.pending - heldAmount));
  const posted = cap > 0n ? cap : 0n;
  const events: LedgerEvent[] = [];
  const changed = rows.map((a) => {
    const after = a.posted + posted;
    for (const t of thresholdsCrossed(a.thresholds, a.limit, a.posted, after)) events.push(thresholdEvent(a, t, after));
    return { ...a, posted: after, pending: a.pending - heldAmount };
  });
  const overrun = c.actual - posted;
  const released = heldAmount > posted ? heldAmount - posted : 0n;
  const answer: SettleAnswer = { status: 'settled', requestId: c.requestId, postedMicros: str(posted), overrunMicros: str(overrun), releasedMicros: str(released), late, revision: c.revision };
  events.unshift(settledEvent(c, hold, answer, 0n));
  const occurredAt = c.occurredAt ?? c.now;
  return {
    answer,
    events,
    hold: { ...hold, status: 'settled', posted, revision: c.revision, version: hold.version + 1, settleAnswer: answer, updatedAt: c.now },
    accounts: changed,
    // the request's own line is revision 0 whatever revision settled it (a correction that arrived first); corrections after it are theirs
    line: { revision: 0, posted, actual: c.actual, overrun, occurredAt },
  };
}

/**
 * A usage with no hold (billing never saw its reserve, or it arrived after its period
 * closed): settled late, with nothing held, on the accounts of the period the usage
 * happened in (`c.accountKeys`, resolved at `c.occurredAt`), never the arrival's.
 */
function usageWithoutHold(c: SettleCommand, accounts: Accounts): Hold {
  const at = c.occurredAt ?? c.now;
  const held = accountsOf(c.accountKeys, accounts).sort(compareAccounts);
  return {
    tenantId: c.tenantId,
    requestId: c.requestId,
    agentId: c.agentId!,
    teamId: c.teamId ?? null,
    amount: 0n,
    status: 'expired',
    accounts: held.map((a) => ({ level: a.level, budgetId: a.budgetId, periodStart: a.periodStart.toISOString() })),
    expiresAt: at,
    posted: 0n,
    version: 0,
    reserveAnswer: { status: 'reserved', requestId: c.requestId, amountMicros: '0', expiresAt: at.toISOString() },
    settleAnswer: null,
    releaseAnswer: null,
    revision: 0,
    createdAt: at,
    updatedAt: c.now,
  };
}

/**
 * A corrected usage (a higher revision of a settled request): the request's posted becomes
 * the corrected actual, capped by the hard levels' headroom as a settle is, on the same
 * accounts (the period of the original usage). The usage line is the difference (negative
 * when the correction lowers the cost), so the lines of a request sum to what it posted.
 */
export function decideCorrection(c: SettleCommand, hold: Hold, accounts: Accounts): LedgerDecision {
  const before = hold.settleAnswer!;
  const postedBefore = BigInt(before.postedMicros);
  const actualBefore = postedBefore + BigInt(before.overrunMicros);
  const rows = accountsOf(hold.accounts.map(accountKey), accounts);
  let cap = c.actual;
  for (const a of rows) if (a.hard) cap = min(cap, postedBefore + a.limit - a.posted - a.pending);
  const posted = cap > 0n ? cap : 0n;
  const delta = posted - postedBefore;
  const events: LedgerEvent[] = [];
  const changed = rows.map((a) => {
    const after = a.posted + delta;
    for (const t of thresholdsCrossed(a.thresholds, a.limit, a.posted, after)) events.push(thresholdEvent(a, t, after));
    return { ...a, posted: after };
  });
  const overrun = c.actual - posted;
  const answer: SettleAnswer = { ...before, postedMicros: str(posted), overrunMicros: str(overrun), releasedMicros: '0', revision: c.revision };
  events.unshift(settledEvent(c, hold, answer, postedBefore));
  return {
    answer,
    events,
    hold: { ...hold, posted, revision: c.revision, version: hold.version + 1, settleAnswer: answer, updatedAt: c.now },
    accounts: changed,
    line: { revision: c.revision, posted: delta, actual: c.actual - actualBefore, overrun: overrun - BigInt(before.overrunMicros), occurredAt: c.occurredAt ?? hold.createdAt },
  };
}

/**
 * Only what the stream does not already say (half of a settle's write is its event): the
 * accounts when no `billing.hold.reserved` names them (a usage with no hold), the revision
 * and the previous posted of a correction.
 */
function settledEvent(c: SettleCommand, hold: Hold, answer: SettleAnswer, previousPosted: bigint): LedgerEvent {
  return {
    type: 'billing.hold.settled',
    data: {
      requestId: c.requestId,
      agentId: hold.agentId,
      teamId: hold.teamId,
      reservedMicros: str(hold.amount),
      actualMicros: str(c.actual),
      postedMicros: answer.postedMicros,
      overrunMicros: answer.overrunMicros,
      late: answer.late,
      model: c.model,
      usage: c.usage,
      ...(hold.version === 0 ? { accounts: hold.accounts } : {}),
      ...(c.revision > 0 ? { revision: c.revision, previousPostedMicros: str(previousPosted) } : {}),
    },
  };
}

/**
 * `release`: the caller gives the hold back (nothing was consumed). `expire`: the sweeper
 * releases a hold past its TTL (a no-op before then). Either is a no-op on a hold that is
 * no longer held, answering its state.
 */
export function decideRelease(c: ReleaseCommand, hold: Hold | undefined, accounts: Accounts): LedgerDecision {
  if (!hold) throw new PalisadeError('not_found', 'hold not found');
  if (hold.status !== 'held' || (c.type === 'expire' && hold.expiresAt > c.now)) {
    // A second release gets the first answer; otherwise the hold's state, nothing released.
    const answer: ReleaseAnswer =
      hold.status === 'released' && hold.releaseAnswer
        ? hold.releaseAnswer
        : { status: hold.status === 'held' ? 'released' : (hold.status as ReleaseAnswer['status']), requestId: c.requestId, releasedMicros: '0' };
    return { answer, events: [], hold: null, accounts: [] };
  }
  const rows = accountsOf(hold.accounts.map(accountKey), accounts);
  const status = c.type === 'expire' ? 'expired' : 'released';
  const answer: ReleaseAnswer = { status, requestId: c.requestId, releasedMicros: str(hold.amount) };
  const event: LedgerEvent =
    c.type === 'expire'
      ? { type: 'billing.hold.expired', data: { requestId: c.requestId, agentId: hold.agentId, releasedMicros: str(hold.amount), expiresAt: hold.expiresAt.toISOString() } }
      : { type: 'billing.hold.released', data: { requestId: c.requestId, agentId: hold.agentId, releasedMicros: str(hold.amount) } };
  return {
    answer,
    events: [event],
    hold: { ...hold, status, version: hold.version + 1, releaseAnswer: answer, updatedAt: c.now },
    accounts: rows.map((a) => ({ ...a, pending: a.pending - hold.amount })),
  };
}
