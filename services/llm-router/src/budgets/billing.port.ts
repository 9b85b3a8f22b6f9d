/** Which level of the budget hierarchy lacks headroom (`user`: the person an agent acts for, or who calls). */
export type BudgetLevel = 'agent' | 'user' | 'team' | 'tenant';

export interface ReserveRequest {
  tenantId: string;
  /** The router's request id: also the hold id and the usage event id (idempotent). */
  requestId: string;
  /** The agent (or, for a person calling directly, `user:<id>`): billing's agent level. */
  agentId: string;
  /** The acting user (the person an agent acts for, or who calls): billing's user level. */
  userId?: string;
  /** The agent's team (billing's team level), from the verified token. */
  teamId?: string;
  model: string;
  /** Worst-case cost in micro-USD (an integer). */
  amountMicros: number;
  /** When billing may expire the hold if it was never settled (the router's hard deadline). */
  expiresAt: string;
}

export type ReserveResult =
  /** `allotmentId`: served from that allotment (AllottingBilling), not by a hold of its own. */
  | { status: 'held'; allotmentId?: string }
  | { status: 'refused'; level: BudgetLevel; limitMicros: number; resetsAt?: string };

export interface SettleRequest {
  tenantId: string;
  requestId: string;
  /** Real cost in micro-USD; the rest of the hold is released. */
  amountMicros: number;
  /** True when the cost is the hold itself (a stream cut before its usage arrived). */
  estimated: boolean;
  usage: { inputTokens: number; outputTokens: number; cacheReadTokens?: number; cacheWriteTokens?: number };
  model: string;
  providerId: string;
  /** A request served from an allotment (`AllottingBilling`): its cost is drawn from that allotment's hold (it has none of its own). */
  allotmentId?: string;
}

/**
 * What the router needs from billing (`palisade.rpc.billing.reserve|settle|release`).
 * Every method throws `PalisadeError('unavailable')` when billing cannot answer, and the
 * router then refuses the request (fail-closed: never an unbudgeted call).
 */
export interface BillingPort {
  reserve(request: ReserveRequest): Promise<ReserveResult>;
  settle(request: SettleRequest): Promise<void>;
  release(request: { tenantId: string; requestId: string }): Promise<void>;
}

/** An allotment to ask billing for: one hold of a block for the budget scope of a request (its tenant, agent, team and user). */
export interface AllotRequest {
  tenantId: string;
  /** The allotment's id: also its hold's id (idempotent). */
  allotmentId: string;
  agentId: string;
  userId?: string;
  teamId?: string;
  /** What is asked (a multiple of the asking request's worst case), in micro-USD. */
  amountMicros: number;
  /** The least that is of use: the asking request's own worst case (granted alone near the limit; refused where it has no room). */
  minAmountMicros: number;
  /** When billing may expire the allotment (beyond the deadline of every request served from it). */
  expiresAt: string;
}

export type AllotResult = { status: 'granted'; amountMicros: number } | { status: 'refused'; level: BudgetLevel; limitMicros: number; resetsAt?: string };

/** The billing port with allotments (`palisade.rpc.billing.reserve` with `minAmountMicros`), which `AllottingBilling` serves reservations from. */
export interface AllotmentPort extends BillingPort {
  allot(request: AllotRequest): Promise<AllotResult>;
}
