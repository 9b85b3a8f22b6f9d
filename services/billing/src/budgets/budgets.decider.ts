import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { BudgetEvent, BudgetSetData, BudgetThresholdCrossed, Level, Period } from './budgets.events';

/** The largest limit a budget may have (a µ-unit amount that still fits PostgreSQL's bigint with room for sums). */
export const MAX_LIMIT_MICROS = 10n ** 15n;
export const DEFAULT_THRESHOLDS: readonly number[] = [50, 80, 100];

export interface PeriodWindow {
  /** First instant of the period (the epoch for `none`). */
  start: Date;
  /** First instant after it; null for `none` (never resets). */
  end: Date | null;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when the runtime knows the IANA zone. */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

function localParts(instant: number, timeZone: string): { y: number; m: number; d: number; ms: number } {
  const parts = Object.fromEntries(formatter(timeZone).formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
  const y = Number(parts.year);
  const m = Number(parts.month);
  const d = Number(parts.day);
  const wall = Date.UTC(y, m - 1, d, Number(parts.hour), Number(parts.minute), Number(parts.second));
  // ms: the zone's offset from UTC at that instant
  return { y, m, d, ms: wall - Math.floor(instant / 1000) * 1000 };
}

/** The UTC instant of local midnight at the start of y-m-d in the zone (DST-safe: offsets re-checked). */
function localMidnight(y: number, m: number, d: number, timeZone: string): Date {
  const wall = Date.UTC(y, m - 1, d);
  let guess = wall - localParts(wall, timeZone).ms;
  guess = wall - localParts(guess, timeZone).ms;
  return new Date(guess);
}

/**
 * The calendar period that contains `now` in the tenant's time zone: a month or a day
 * (local midnight to local midnight, so a month in Asia/Shanghai starts at 16:00 UTC the
 * day before), or the whole of time for `none`.
 */
export function periodOf(now: Date, period: Period, timeZone: string): PeriodWindow {
  if (period === 'none') return { start: new Date(0), end: null };
  // The last window of each (period, zone) is remembered: the ledger asks for every reserve.
  const key = `${period}|${timeZone}`;
  const last = lastWindows.get(key);
  if (last && last.start.getTime() <= now.getTime() && now.getTime() < last.end!.getTime()) return last;
  const window = computePeriod(now, period, timeZone);
  if (lastWindows.size > 1000) lastWindows.clear();
  lastWindows.set(key, window);
  return window;
}

const lastWindows = new Map<string, PeriodWindow>();

function computePeriod(now: Date, period: 'month' | 'day', timeZone: string): PeriodWindow {
  const { y, m, d } = localParts(now.getTime(), timeZone);
  if (period === 'day') {
    const next = new Date(Date.UTC(y, m - 1, d + 1));
    return { start: localMidnight(y, m, d, timeZone), end: localMidnight(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timeZone) };
  }
  const next = new Date(Date.UTC(y, m, 1));
  return { start: localMidnight(y, m, 1, timeZone), end: localMidnight(next.getUTCFullYear(), next.getUTCMonth() + 1, 1, timeZone) };
}

/** Thresholds (percent) crossed when posted spending goes from `before` to `after` against `limit`. */
export function thresholdsCrossed(thresholds: readonly number[], limit: bigint, before: bigint, after: bigint): number[] {
  if (limit <= 0n || after <= before) return [];
  return thresholds.filter((t) => before * 100n < BigInt(t) * limit && after * 100n >= BigInt(t) * limit);
}

export function thresholdEvent(
  account: { budgetId: string; level: Level; subjectId: string; periodStart: Date; limit: bigint; hard: boolean },
  threshold: number,
  posted: bigint,
): BudgetThresholdCrossed {
  return {
    type: 'billing.budget.threshold_crossed',
    data: {
      budgetId: account.budgetId,
      level: account.level,
      subjectId: account.subjectId,
      threshold,
      periodStart: account.periodStart.toISOString(),
      limitMicros: account.limit.toString(),
      postedMicros: posted.toString(),
      hard: account.hard,
    },
  };
}

// ---------------------------------------------------------------------------------------
// The budget aggregate (`budget-<tenant>.<level>.<subject>`): set and removed.

export interface BudgetState {
  budget: BudgetSetData | null;
}

export type SetBudget = Command<'set', Omit<BudgetSetData, 'budgetId'> & { budgetId: string }>;
export type RemoveBudget = Command<'remove', { level: Level; subjectId: string }>;
export type BudgetCommand = SetBudget | RemoveBudget;

export const budgetsDecider: Decider<BudgetState, BudgetCommand, BudgetEvent> = {
  initialState: () => ({ budget: null }),
  decide(command, state) {
    if (command.type === 'remove') {
      if (!state.budget) throw new PalisadeError('not_found', 'budget not found');
      return [{ type: 'billing.budget.removed', data: { budgetId: state.budget.budgetId, level: state.budget.level, subjectId: state.budget.subjectId } }];
    }
    const d = command.data;
    const limit = BigInt(d.limitMicros);
    if (limit < 0n || limit > MAX_LIMIT_MICROS) throw new PalisadeError('validation', `limitMicros: must be between 0 and ${MAX_LIMIT_MICROS}`);
    if (!isTimeZone(d.timeZone)) throw new PalisadeError('validation', 'timeZone: not an IANA time zone');
    if (d.thresholds.some((t) => !Number.isInteger(t) || t < 1 || t > 1000)) throw new PalisadeError('validation', 'thresholds: integers from 1 to 1000 (percent)');
    // A budget keeps its id across changes, so its ledger accounts (periods) stay its own.
    const budgetId = state.budget?.budgetId ?? d.budgetId;
    const thresholds = [...new Set(d.thresholds)].sort((a, b) => a - b);
    return [{ type: 'billing.budget.set', data: { ...d, budgetId, limitMicros: limit.toString(), thresholds } }];
  },
  evolve(_state, event) {
    if (event.type === 'billing.budget.set') return { budget: event.data };
    return { budget: null };
  },
};
