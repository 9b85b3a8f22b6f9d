import { DeciderSpecification } from '@palisade/eventsourcing';
import { budgetsDecider, periodOf, thresholdsCrossed, type BudgetCommand } from './budgets.decider';

const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-03T10:00:00.000Z') };
const set = (over: Partial<Extract<BudgetCommand, { type: 'set' }>['data']> = {}): BudgetCommand => ({
  type: 'set',
  data: { budgetId: 'b1', level: 'team', subjectId: 'platform', limitMicros: '50000000', period: 'month', timeZone: 'UTC', hard: true, thresholds: [80, 50, 100], ...over },
  metadata,
});

describe('budget periods', () => {
  it('a month in Asia/Shanghai runs from local midnight on the 1st (16:00 UTC the day before)', () => {
    expect(periodOf(new Date('2026-11-30T16:30:00.000Z'), 'month', 'Asia/Shanghai')).toEqual({
      start: new Date('2026-11-30T16:00:00.000Z'),
      end: new Date('2026-12-31T16:00:00.000Z'),
    });
    expect(periodOf(new Date('2026-11-30T15:59:59.000Z'), 'month', 'Asia/Shanghai').start).toEqual(new Date('2026-10-31T16:00:00.000Z'));
  });

  it('a day follows daylight saving time (Europe/Berlin, 25-hour day)', () => {
    const w = periodOf(new Date('2026-10-25T12:00:00.000Z'), 'day', 'Europe/Berlin');
    expect(w).toEqual({ start: new Date('2026-10-24T22:00:00.000Z'), end: new Date('2026-10-25T23:00:00.000Z') });
  });

  it('no period never resets', () => {
    expect(periodOf(new Date(), 'none', 'UTC')).toEqual({ start: new Date(0), end: null });
  });

  it('thresholds crossed, in integer arithmetic', () => {
    expect(thresholdsCrossed([50, 80, 100], 100n, 49n, 80n)).toEqual([50, 80]);
    expect(thresholdsCrossed([50, 80, 100], 100n, 80n, 99n)).toEqual([]);
    expect(thresholdsCrossed([50], 3n, 1n, 2n)).toEqual([50]);
  });
});

describe('budgets decider', () => {
  const spec = DeciderSpecification.for(budgetsDecider);
  it('sets a budget with sorted thresholds; a change keeps the budget id', () => {
    spec([]).when(set()).then([
      { type: 'billing.budget.set', data: { budgetId: 'b1', level: 'team', subjectId: 'platform', limitMicros: '50000000', period: 'month', timeZone: 'UTC', hard: true, thresholds: [50, 80, 100] } },
    ]);
    const first = budgetsDecider.decide(set(), budgetsDecider.initialState())[0];
    spec([first]).when(set({ budgetId: 'b2', limitMicros: '1' })).then([{ type: 'billing.budget.set', data: { ...first.data, limitMicros: '1', thresholds: [50, 80, 100] } as never }]);
  });
  it('refuses a bad time zone, a negative limit, a bad threshold; removing nothing is not found', () => {
    spec([]).when(set({ timeZone: 'Mars/Olympus' })).thenThrows('validation', 'timeZone');
    spec([]).when(set({ limitMicros: '-1' })).thenThrows('validation', 'limitMicros');
    spec([]).when(set({ thresholds: [0] })).thenThrows('validation', 'thresholds');
    spec([]).when({ type: 'remove', data: { level: 'team', subjectId: 'x' }, metadata }).thenThrows('not_found');
  });
});
