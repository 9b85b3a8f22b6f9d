/** The budgets context's published language. Money is a decimal string of micro-units (bigint). */

/** `user`: the person an agent acts for (its token's `act.sub`), where a tenant budgets people too. */
export const LEVELS = ['tenant', 'team', 'user', 'agent'] as const;
export type Level = (typeof LEVELS)[number];
/** Locking order of the ledger: every path locks budget rows in this order (no deadlocks). */
export const LEVEL_RANK: Readonly<Record<Level, number>> = { tenant: 0, team: 1, user: 2, agent: 3 };

export const PERIODS = ['month', 'day', 'none'] as const;
export type Period = (typeof PERIODS)[number];

export type BudgetSetData = {
  budgetId: string;
  level: Level;
  subjectId: string;
  limitMicros: string;
  period: Period;
  timeZone: string;
  hard: boolean;
  thresholds: number[];
};

export type BudgetSet = { type: 'billing.budget.set'; data: BudgetSetData };
export type BudgetRemoved = { type: 'billing.budget.removed'; data: { budgetId: string; level: Level; subjectId: string } };
/** Posted spending crossed a threshold (percent of the limit) in a period: once per budget, period and threshold. */
export type BudgetThresholdCrossed = {
  type: 'billing.budget.threshold_crossed';
  data: { budgetId: string; level: Level; subjectId: string; threshold: number; periodStart: string; limitMicros: string; postedMicros: string; hard: boolean };
};

export type BudgetEvent = BudgetSet | BudgetRemoved;
