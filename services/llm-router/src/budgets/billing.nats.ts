import { PalisadeError } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';
import type { BillingPort, ReserveRequest, ReserveResult, SettleRequest } from './billing.port';

export const BILLING_RESERVE = 'palisade.rpc.billing.reserve';
export const BILLING_SETTLE = 'palisade.rpc.billing.settle';
export const BILLING_RELEASE = 'palisade.rpc.billing.release';

/**
 * The billing port over NATS request-reply (mTLS; `deploy/local/nats-requests.txt` lets
 * the router ask exactly these three methods). No connection, no answer in time or a
 * malformed answer: `unavailable`, so the request is refused.
 */
export class NatsBillingAdapter implements BillingPort {
  constructor(
    private readonly nats: () => NatsConnection | undefined,
    private readonly timeoutMs: number,
  ) {}

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const result = await this.ask<ReserveResult>(BILLING_RESERVE, request);
    if (result?.status === 'held') return { status: 'held' };
    if (result?.status === 'refused' && ['agent', 'team', 'tenant'].includes(result.level) && Number.isSafeInteger(result.limitMicros)) {
      return { status: 'refused', level: result.level, limitMicros: result.limitMicros, ...(typeof result.resetsAt === 'string' ? { resetsAt: result.resetsAt } : {}) };
    }
    throw new PalisadeError('unavailable', 'billing answered the reservation in an unknown shape: refused');
  }

  async settle(request: SettleRequest): Promise<void> {
    await this.ask(BILLING_SETTLE, request);
  }

  async release(request: { tenantId: string; requestId: string }): Promise<void> {
    await this.ask(BILLING_RELEASE, request);
  }

  private async ask<T>(subject: string, payload: unknown): Promise<T> {
    const nc = this.nats();
    if (!nc) throw new PalisadeError('unavailable', 'billing cannot be reached (not connected yet): refused');
    try {
      return await rpcRequest<T>(nc, subject, payload, { timeoutMs: this.timeoutMs });
    } catch (error) {
      if (error instanceof PalisadeError && error.code !== 'unavailable' && error.code !== 'internal') throw error;
      throw new PalisadeError('unavailable', 'billing cannot be reached: refused (no unbudgeted call)');
    }
  }
}
