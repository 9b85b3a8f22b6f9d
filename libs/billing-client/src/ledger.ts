import { PalisadeError, rpcSubject } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';

/** billing's fast path (services/billing/src/ledger/ledger.rpc.ts); NATS lets only llm-router and sandbox-orchestrator ask it. */
export const BILLING_RESERVE = rpcSubject('billing', 'reserve');
export const BILLING_SETTLE = rpcSubject('billing', 'settle');
export const BILLING_RELEASE = rpcSubject('billing', 'release');
export const BILLING_QUOTE = rpcSubject('billing', 'quote');

/** A budget level billing names in a refusal. */
export type BudgetLevel = 'tenant' | 'team' | 'user' | 'agent';
const LEVELS: readonly BudgetLevel[] = ['tenant', 'team', 'user', 'agent'];

/** A usage quantity per kind (billing's price-table kinds: `input_tokens`, `cpu_ms`, …; integers). */
export type UsageQuantity = { kind: string; quantity: number };

/** `palisade.rpc.billing.reserve`: hold `amountMicros` on the agent, its team, its user and the tenant at once. */
export interface LedgerReserve {
  tenantId: string;
  /** The hold's id: the same request id settles it (idempotent). */
  requestId: string;
  /** billing's agent level: the agent, or `user:<id>` for a person calling directly. */
  agentId: string;
  teamId?: string | null;
  userId?: string | null;
  /** µ-units of the currency (an integer). */
  amountMicros: number | bigint;
  /** 1 s … 1 h: past it billing's sweeper releases the hold (`expired`, nothing posted). */
  ttlMs: number;
}

export type LedgerReserveAnswer =
  | { status: 'held'; expiresAt: string }
  | { status: 'refused'; level: BudgetLevel; limitMicros: number; resetsAt?: string };

/**
 * An allotment (`palisade.rpc.billing.reserve` with `minAmountMicros`): one hold of a block for a budget
 * scope (the same tenant, agent, team and user a reserve names), from which the caller serves the
 * reservations of its following requests in memory, each then settled with `allotmentId`. `allotmentId`
 * is the hold's id (idempotent: a retry gets the first answer).
 */
export interface LedgerAllot extends Omit<LedgerReserve, 'requestId'> {
  allotmentId: string;
  /** The least that is of use (the asking request's worst case): billing grants `amountMicros` up to half the headroom left, never below this, and refuses where this has no room. */
  minAmountMicros: number | bigint;
}

export type LedgerAllotAnswer =
  | { status: 'granted'; amountMicros: number; expiresAt: string }
  | { status: 'refused'; level: BudgetLevel; limitMicros: number; resetsAt?: string };

export interface LedgerSettle {
  tenantId: string;
  requestId: string;
  actualMicros: number | bigint;
  model?: string | null;
  usage?: readonly UsageQuantity[];
  /** A request served from this allotment (no reserve of its own): its cost is drawn from the allotment. */
  allotmentId?: string;
}

type ReserveWire =
  | { status: 'reserved'; requestId: string; amountMicros: string; expiresAt: string }
  | { status: 'refused'; requestId: string; level: string; limitMicros: string; resetsAt: string | null };

function reserveWire(r: Omit<LedgerReserve, 'requestId'>, requestId: string) {
  return {
    tenantId: r.tenantId,
    requestId,
    agentId: r.agentId,
    teamId: r.teamId ?? null,
    ...(r.userId ? { userId: r.userId } : {}),
    amountMicros: String(r.amountMicros),
    ttlMs: Math.min(3_600_000, Math.max(1000, Math.ceil(r.ttlMs))),
  };
}

/** A refusal (level, limit, reset) for the caller's 429; any other answer is `unavailable` (fail closed). */
function refusalOf(answer: ReserveWire | undefined): { status: 'refused'; level: BudgetLevel; limitMicros: number; resetsAt?: string } {
  if (answer?.status === 'refused' && LEVELS.includes(answer.level as BudgetLevel) && /^\d{1,16}$/.test(answer.limitMicros)) {
    return { status: 'refused', level: answer.level as BudgetLevel, limitMicros: Number(answer.limitMicros), ...(answer.resetsAt ? { resetsAt: answer.resetsAt } : {}) };
  }
  throw new PalisadeError('unavailable', 'billing answered the reservation in an unknown shape: refused');
}

/**
 * billing's ledger over NATS request-reply, in its wire format: amounts as decimal strings
 * of µ-units, a refusal as an answer (level, limit, reset) for the caller's 429. No
 * connection, no answer in time, an error or an answer of unknown shape: `unavailable`
 * (fail-closed: never an unbudgeted call). Shared by llm-router and sandbox-orchestrator.
 */
export class LedgerClient {
  constructor(
    private readonly nats: () => NatsConnection | undefined,
    private readonly timeoutMs: number,
  ) {}

  async reserve(r: LedgerReserve): Promise<LedgerReserveAnswer> {
    const answer = await this.ask<ReserveWire>(BILLING_RESERVE, reserveWire(r, r.requestId));
    if (answer?.status === 'reserved') return { status: 'held', expiresAt: answer.expiresAt };
    return refusalOf(answer);
  }

  /** An allotment: granted (how much: `amountMicros` asked or only `minAmountMicros`, and until when) or refused as a reserve is. */
  async allot(r: LedgerAllot): Promise<LedgerAllotAnswer> {
    const answer = await this.ask<ReserveWire>(BILLING_RESERVE, { ...reserveWire(r, r.allotmentId), minAmountMicros: String(r.minAmountMicros) });
    if (answer?.status === 'reserved' && /^\d{1,16}$/.test(answer.amountMicros) && BigInt(answer.amountMicros) >= BigInt(r.minAmountMicros)) {
      return { status: 'granted', amountMicros: Number(answer.amountMicros), expiresAt: answer.expiresAt };
    }
    return refusalOf(answer);
  }

  async settle(r: LedgerSettle): Promise<void> {
    await this.ask(BILLING_SETTLE, {
      tenantId: r.tenantId,
      requestId: r.requestId,
      actualMicros: String(r.actualMicros),
      ...(r.model !== undefined ? { model: r.model } : {}),
      ...(r.usage ? { usage: r.usage } : {}),
      ...(r.allotmentId ? { allotmentId: r.allotmentId } : {}),
    });
  }

  async release(r: { tenantId: string; requestId: string }): Promise<void> {
    await this.ask(BILLING_RELEASE, { tenantId: r.tenantId, requestId: r.requestId });
  }

  /**
   * What a usage costs at the tenant's price table in force (rounded up once, by billing).
   * billing's own refusal (no price for a kind: `not_found`; bad input) keeps its code and
   * message; anything else is `unavailable`.
   */
  async quote(q: { tenantId: string; provider: string; model: string; usage: readonly UsageQuantity[] }): Promise<bigint> {
    const answer = await this.ask<{ amountMicros?: unknown }>(BILLING_QUOTE, q, ['not_found', 'validation']);
    if (typeof answer?.amountMicros !== 'string' || !/^\d{1,19}$/.test(answer.amountMicros)) throw new PalisadeError('unavailable', 'billing answered the quote in an unknown shape: refused');
    return BigInt(answer.amountMicros);
  }

  private async ask<T>(subject: string, payload: unknown, passThrough: readonly string[] = []): Promise<T> {
    const nc = this.nats();
    if (!nc) throw new PalisadeError('unavailable', 'billing cannot be reached (not connected yet): refused');
    try {
      return await rpcRequest<T>(nc, subject, payload, { timeoutMs: this.timeoutMs });
    } catch (error) {
      if (error instanceof PalisadeError && passThrough.includes(error.code)) throw new PalisadeError(error.code, `billing: ${error.message}`);
      throw new PalisadeError('unavailable', 'billing cannot be reached: refused (no unbudgeted call)');
    }
  }
}
