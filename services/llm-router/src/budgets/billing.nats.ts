import { PalisadeError } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';
import type { BillingPort, BudgetLevel, ReserveRequest, ReserveResult, SettleRequest } from './billing.port';

export const BILLING_RESERVE = 'palisade.rpc.billing.reserve';
export const BILLING_SETTLE = 'palisade.rpc.billing.settle';
export const BILLING_RELEASE = 'palisade.rpc.billing.release';

/** What billing's ledger answers to a reservation (services/billing, ledger.rpc.ts): amounts are decimal strings of micro-units. */
type ReserveAnswer =
  | { status: 'reserved'; requestId: string; amountMicros: string; expiresAt: string }
  | { status: 'refused'; requestId: string; level: string; limitMicros: string; resetsAt: string | null };

const LEVELS: readonly BudgetLevel[] = ['agent', 'team', 'tenant'];

/**
 * The billing port over NATS request-reply (mTLS; `deploy/local/nats-requests.txt` lets
 * the router ask these methods), in the ledger's wire format: amounts as decimal strings,
 * the hold's lifetime as `ttlMs` (the router's deadline), usage as quantities per kind
 * (`estimated` marks a charge of the hold itself). No connection, no answer in time, an
 * error or an answer of unknown shape: `unavailable`, so the request is refused.
 */
export class NatsBillingAdapter implements BillingPort {
  constructor(
    private readonly nats: () => NatsConnection | undefined,
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async reserve(r: ReserveRequest): Promise<ReserveResult> {
    const ttlMs = Math.min(3_600_000, Math.max(1000, Date.parse(r.expiresAt) - this.now()));
    const answer = await this.ask<ReserveAnswer>(BILLING_RESERVE, {
      tenantId: r.tenantId,
      requestId: r.requestId,
      agentId: r.agentId,
      teamId: r.teamId ?? null,
      amountMicros: String(r.amountMicros),
      ttlMs,
    });
    if (answer?.status === 'reserved') return { status: 'held' };
    if (answer?.status === 'refused' && LEVELS.includes(answer.level as BudgetLevel) && /^\d{1,16}$/.test(answer.limitMicros)) {
      return { status: 'refused', level: answer.level as BudgetLevel, limitMicros: Number(answer.limitMicros), ...(answer.resetsAt ? { resetsAt: answer.resetsAt } : {}) };
    }
    throw new PalisadeError('unavailable', 'billing answered the reservation in an unknown shape: refused');
  }

  async settle(r: SettleRequest): Promise<void> {
    const usage = [
      { kind: 'input_tokens', quantity: r.usage.inputTokens },
      { kind: 'output_tokens', quantity: r.usage.outputTokens },
      ...(r.usage.cacheReadTokens ? [{ kind: 'cache_read_tokens', quantity: r.usage.cacheReadTokens }] : []),
      ...(r.usage.cacheWriteTokens ? [{ kind: 'cache_write_tokens', quantity: r.usage.cacheWriteTokens }] : []),
      ...(r.estimated ? [{ kind: 'estimated', quantity: 1 }] : []),
    ];
    await this.ask(BILLING_SETTLE, { tenantId: r.tenantId, requestId: r.requestId, actualMicros: String(r.amountMicros), model: r.model, usage });
  }

  async release(r: { tenantId: string; requestId: string }): Promise<void> {
    await this.ask(BILLING_RELEASE, { tenantId: r.tenantId, requestId: r.requestId });
  }

  private async ask<T>(subject: string, payload: unknown): Promise<T> {
    const nc = this.nats();
    if (!nc) throw new PalisadeError('unavailable', 'billing cannot be reached (not connected yet): refused');
    try {
      return await rpcRequest<T>(nc, subject, payload, { timeoutMs: this.timeoutMs });
    } catch {
      throw new PalisadeError('unavailable', 'billing cannot be reached: refused (no unbudgeted call)');
    }
  }
}
