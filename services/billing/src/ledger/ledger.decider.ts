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

/**
 * `request`: one request's hold. `allotment`: a block one router instance holds for one budget scope
 * (tenant, team, user, agent) and serves its following requests' reservations from, in memory: each of
 * those requests is settled against it (`SettleCommand.allotmentId`), which posts the request's cost
 * and lowers the allotment's `amount` (what it still holds) by as much; release or expiry frees the rest.
 */
export type HoldKind = 'request' | 'allotment';

/** A request's hold, as stored: its state and the first answer of each operation (idempotency). */
export interface Hold {
  tenantId: string;
  requestId: string;
  /** Absent: `request` (rows from before allotments). */
  kind?: HoldKind;
  /** A request settled against an allotment: the allotment's id (its own `amount` is what it drew from it). */
  allotmentId?: string | null;
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
  /**
   * An allotment (kind `allotment`): `amount` is what is asked, `minAmount` (≤ amount) the least that is
   * of use (the asking request's own worst case). Granted: `amount` up to half the least headroom of its
   * hard levels, never below `minAmount` (`allotted`: one scope never takes the headroom other scopes'
   * requests need; near the limit an allotment is one request's hold), else refused as a reserve of
   * `minAmount` is.
   */
  minAmount?: bigint;
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
  /** A request served from an allotment: its cost is drawn from the allotment's hold (the request has no hold of its own before this). */
  allotmentId?: string | null;
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
  /** The allotment a settle drew from, as it is now (its `amount` lowered by the draw; no event of its own: the request's `billing.hold.settled` names it and what was drawn). */
  allotment?: Hold;
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

/** An allotment's grant: `asked`, capped at half the least headroom of its hard levels, never below `least`. */
function allotted(asked: bigint, least: bigint, held: readonly Account[]): bigint {
  let grant = asked;
  for (const a of held) if (a.hard) grant = min(grant, (a.limit - a.posted - a.pending) / 2n);
  return grant > least ? grant : least;
}

/** `allotment`: for a settle naming one (`SettleCommand.allotmentId`), that allotment's hold, if billing has it. */
export function decide(command: LedgerCommand, hold: Hold | undefined, accounts: Accounts, allotment?: Hold): LedgerDecision {
  switch (command.type) {
    case 'reserve':
      return decideReserve(command, hold, accounts);
    case 'settle':
      return decideSettle(command, hold, accounts, allotment);
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
  if (c.minAmount !== undefined && (c.minAmount <= 0n || c.minAmount > c.amount)) throw new PalisadeError('validation', 'minAmountMicros: must be between 1 and amountMicros');
  const held = accountsOf(c.accountKeys, accounts).sort(compareAccounts);
  // an allotment: what it asks up to half the tightest hard level's headroom (one scope never takes the headroom
  // other scopes' requests need), at least the asking request's own worst case (refused below if even that does not fit)
  const amount = c.minAmount === undefined ? c.amount : allotted(c.amount, c.minAmount, held);
  const kind: HoldKind = c.minAmount === undefined ? 'request' : 'allotment';
  const base = {
    tenantId: c.tenantId,
    requestId: c.requestId,
    kind,
    allotmentId: null,
    agentId: c.agentId,
    teamId: c.teamId,
    amount,
    expiresAt: new Date(c.now.getTime() + c.ttlMs),
    posted: 0n,
    settleAnswer: null,
    releaseAnswer: null,
    revision: 0,
    createdAt: c.now,
    updatedAt: c.now,
  };
  const short = held.find((a) => a.hard && a.posted + a.pending + amount > a.limit);
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
      events: [{ type: 'billing.hold.refused', data: { ...data, agentId: c.agentId, teamId: c.teamId, amountMicros: str(amount), ...(kind === 'allotment' ? { allotment: true } : {}) } }],
      hold: { ...base, amount: 0n, status: 'refused', accounts: [], version: 1, reserveAnswer: answer },
      accounts: [],
    };
  }
  const heldAccounts: HeldAccount[] = held.map((a) => ({ level: a.level, budgetId: a.budgetId, periodStart: a.periodStart.toISOString() }));
  const answer: ReserveAnswer = { status: 'reserved', requestId: c.requestId, amountMicros: str(amount), expiresAt: base.expiresAt.toISOString() };
  return {
    answer,
    events: [
      {
        type: 'billing.hold.reserved',
        data: {
          requestId: c.requestId,
          agentId: c.agentId,
          teamId: c.teamId,
          amountMicros: str(amount),
          expiresAt: answer.expiresAt,
          accounts: heldAccounts,
          ...(kind === 'allotment' ? { allotment: true, askedMicros: str(c.amount) } : {}),
        },
      },
    ],
    hold: { ...base, status: 'held', accounts: heldAccounts, version: 1, reserveAnswer: answer },
    accounts: held.map((a) => ({ ...a, pending: a.pending + amount })),
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
export function decideSettle(c: SettleCommand, hold: Hold | undefined, accounts: Accounts, allotment?: Hold): LedgerDecision {
  if (c.actual < 0n || c.actual > MAX_AMOUNT_MICROS) throw new PalisadeError('validation', `actualMicros: must be between 0 and ${MAX_AMOUNT_MICROS}`);
  if (!Number.isInteger(c.revision) || c.revision < 0) throw new PalisadeError('validation', 'revision: must be a whole number ≥ 0');
  if (hold?.kind === 'allotment') throw new PalisadeError('illegal_state', 'an allotment is not settled itself: each request served from it is (allotmentId)');
  let drawnFrom: Hold | undefined;
  if (!hold && c.allotmentId) {
    if (allotment?.kind !== 'allotment') {
      if (!c.agentId) throw new PalisadeError('not_found', 'allotment not found');
    } else {
      // a usage event's claim is checked against the allotment it names: another agent's is not drawn from
      if (c.agentId && c.agentId !== allotment.agentId) throw new PalisadeError('validation', "allotmentId: the allotment of another agent than the usage's");
      hold = drawnHold(c, allotment);
      if (allotment.status === 'held') drawnFrom = allotment;
    }
  }
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
    // what it drew is no longer held by the allotment (the accounts' pending fell by as much above)
    ...(drawnFrom && heldAmount > 0n ? { allotment: { ...drawnFrom, amount: drawnFrom.amount - heldAmount, updatedAt: c.now } } : {}),
  };
}

/**
 * The hold of a request served from an allotment, made at its settle (the router reserved it from the
 * allotment in memory, billing never saw it): charged to the allotment's accounts, holding what it draws
 * from it, `min(actual, what the allotment still holds)`; the settle then posts the actual as for any hold
 * (headroom never less than what it holds). The router serves a request only while the allotment holds its
 * worst case besides every other request it served and has not settled, so the draw is the actual. An
 * allotment no longer held (expired, released): nothing is held for the request, and it is settled `late`,
 * as a settle after its own hold expired is.
 */
function drawnHold(c: SettleCommand, allotment: Hold): Hold {
  const live = allotment.status === 'held';
  const draw = live ? min(c.actual, allotment.amount) : 0n;
  return {
    tenantId: c.tenantId,
    requestId: c.requestId,
    kind: 'request',
    allotmentId: allotment.requestId,
    agentId: allotment.agentId,
    teamId: allotment.teamId,
    amount: draw,
    status: live ? 'held' : 'expired',
    accounts: allotment.accounts,
    expiresAt: allotment.expiresAt,
    posted: 0n,
    version: 0,
    reserveAnswer: { status: 'reserved', requestId: c.requestId, amountMicros: str(draw), expiresAt: allotment.expiresAt.toISOString() },
    settleAnswer: null,
    releaseAnswer: null,
    revision: 0,
    createdAt: c.occurredAt ?? c.now,
    updatedAt: c.now,
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
      ...(hold.allotmentId ? { allotmentId: hold.allotmentId } : {}),
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
