import { LedgerClient } from '@palisade/billing-client';
import type { NatsConnection } from '@palisade/nats';
import type { AllotmentPort, AllotRequest, AllotResult, ReserveRequest, ReserveResult, SettleRequest } from './billing.port';

/**
 * The billing port over NATS request-reply (mTLS; `deploy/local/nats-requests.txt` lets
 * the router ask these methods), through `@palisade/billing-client` (the ledger's wire
 * format: amounts as decimal strings, the hold's lifetime as `ttlMs` (the router's
 * deadline), usage as quantities per kind (`estimated` marks a charge of the hold itself).
 * No connection, no answer in time, an error or an answer of unknown shape (a refusal of
 * an unknown level included): `unavailable` (the client's checks), so the request is refused.
 */
export class NatsBillingAdapter implements AllotmentPort {
  private readonly ledger: LedgerClient;

  constructor(
    nats: () => NatsConnection | undefined,
    timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.ledger = new LedgerClient(nats, timeoutMs);
  }

  async reserve(r: ReserveRequest): Promise<ReserveResult> {
    const answer = await this.ledger.reserve({ tenantId: r.tenantId, requestId: r.requestId, agentId: r.agentId, teamId: r.teamId ?? null, userId: r.userId ?? null, amountMicros: r.amountMicros, ttlMs: Date.parse(r.expiresAt) - this.now() });
    // a refusal the client let through names a known level and limit (else it threw `unavailable`)
    return answer.status === 'held' ? { status: 'held' } : answer;
  }

  /** An allotment: granted (how much) or refused as a reservation is; the same fail-closed rules. */
  async allot(r: AllotRequest): Promise<AllotResult> {
    const answer = await this.ledger.allot({
      tenantId: r.tenantId,
      allotmentId: r.allotmentId,
      agentId: r.agentId,
      teamId: r.teamId ?? null,
      userId: r.userId ?? null,
      amountMicros: r.amountMicros,
      minAmountMicros: r.minAmountMicros,
      ttlMs: Date.parse(r.expiresAt) - this.now(),
    });
    return answer.status === 'granted' ? { status: 'granted', amountMicros: answer.amountMicros } : answer;
  }

  async settle(r: SettleRequest): Promise<void> {
    const usage = [
      { kind: 'input_tokens', quantity: r.usage.inputTokens },
      { kind: 'output_tokens', quantity: r.usage.outputTokens },
      ...(r.usage.cacheReadTokens ? [{ kind: 'cache_read_tokens', quantity: r.usage.cacheReadTokens }] : []),
      ...(r.usage.cacheWriteTokens ? [{ kind: 'cache_write_tokens', quantity: r.usage.cacheWriteTokens }] : []),
      ...(r.estimated ? [{ kind: 'estimated', quantity: 1 }] : []),
    ];
    await this.ledger.settle({ tenantId: r.tenantId, requestId: r.requestId, actualMicros: r.amountMicros, model: r.model, usage, ...(r.allotmentId ? { allotmentId: r.allotmentId } : {}) });
  }

  async release(r: { tenantId: string; requestId: string }): Promise<void> {
    await this.ledger.release({ tenantId: r.tenantId, requestId: r.requestId });
  }
}
