import type { Level } from '../budgets/budgets.events';
import type { BudgetThresholdCrossed } from '../budgets/budgets.events';

/**
 * The ledger's published language: one stream per request, `hold-<tenant>.<requestId>`
 * (reserved or refused, then settled, released or expired). Money is a decimal string of
 * micro-units of the tenant's currency (bigint, never a float).
 */

/** What a hold was charged to: the budget period rows of each level that has a budget. */
export interface HeldAccount {
  level: Level;
  budgetId: string;
  periodStart: string;
}

export type HoldReserved = {
  type: 'billing.hold.reserved';
  data: {
    requestId: string;
    agentId: string;
    teamId: string | null;
    amountMicros: string;
    expiresAt: string;
    accounts: HeldAccount[];
    /** An allotment (a router instance's block for one budget scope; `requestId` is its id): `amountMicros` granted of `askedMicros` asked. */
    allotment?: true;
    askedMicros?: string;
  };
};

export type HoldRefused = {
  type: 'billing.hold.refused';
  data: {
    requestId: string;
    agentId: string;
    teamId: string | null;
    amountMicros: string;
    level: Level;
    budgetId: string;
    limitMicros: string;
    postedMicros: string;
    pendingMicros: string;
    resetsAt: string | null;
    /** An allotment refused: not even `amountMicros`, the asking request's own worst case, had room. */
    allotment?: true;
  };
};

/**
 * The usage line of a request: `postedMicros` is what the ledger posted on every level
 * (the actual cost, capped so that no hard budget is exceeded); `overrunMicros` is the
 * part of the actual cost that could not be posted (actual above the hold and above the
 * headroom left). `late`: settled after the hold had expired.
 */
export type HoldSettled = {
  type: 'billing.hold.settled';
  data: {
    requestId: string;
    agentId: string;
    teamId: string | null;
    reservedMicros: string;
    actualMicros: string;
    postedMicros: string;
    overrunMicros: string;
    late: boolean;
    model: string | null;
    usage: UsageQuantity[];
    /** Only on a usage with no hold (the stream's first event); otherwise its `billing.hold.reserved` names them. */
    accounts?: HeldAccount[];
    /** Only on a correction (absent: 0, the original usage), whose `postedMicros` replaces `previousPostedMicros` on the same accounts. */
    revision?: number;
    previousPostedMicros?: string;
    /** A request served from an allotment: the allotment it was drawn from (`reservedMicros`: what it drew; the allotment holds that much less). */
    allotmentId?: string;
  };
};

export type HoldReleased = { type: 'billing.hold.released'; data: { requestId: string; agentId: string; releasedMicros: string } };
/** Released by the sweeper: the hold outlived its TTL (the caller never settled). */
export type HoldExpired = { type: 'billing.hold.expired'; data: { requestId: string; agentId: string; releasedMicros: string; expiresAt: string } };

/** A measured quantity of a request (tokens of a kind, CPU-seconds, …). */
export interface UsageQuantity {
  kind: string;
  quantity: number;
}

export type LedgerEvent = HoldReserved | HoldRefused | HoldSettled | HoldReleased | HoldExpired | BudgetThresholdCrossed;
