import type { LedgerClient } from '@palisade/billing-client';
import { PalisadeError, type Principal } from '@palisade/contracts';
import type { MeteredQuantity } from './sandboxes.events';
import { billedSubjectOf, SANDBOX_PRICE_PROVIDER } from './sandboxes.metering';

/** What the sandboxes service needs of billing: hold an execution's worst case, price its actual usage, release a hold. */
export interface ExecutionBilling {
  /** Holds an amount (the worst case, priced) under the execution id (billing's request id); a budget without room is a 429 naming it. */
  reserve(principal: Principal, execution: { executionId: string; amountMicros: bigint; ttlMs: number }): Promise<void>;
  /** The cost of a usage at the tenant's price table in force (billing's quote). */
  price(tenantId: string, template: string, usage: readonly MeteredQuantity[]): Promise<bigint>;
  /** Releases a hold whose execution will not be metered (it never started, or was lost). */
  release(tenantId: string, executionId: string): Promise<void>;
}

/**
 * Executions metered by billing's ledger (`@palisade/billing-client`, over NATS): the worst
 * case is quoted and held before anything runs; the actual is settled by the usage event
 * (`sandbox-orchestrator.usage.recorded`) through billing's durable. Usage is priced as
 * provider `sandbox`, model = the sandbox's template, kinds `cpu_ms`, `memory_mb_ms`, `wall_ms`.
 */
export class LedgerExecutionBilling implements ExecutionBilling {
  constructor(private readonly ledger: Pick<LedgerClient, 'quote' | 'reserve' | 'release'>) {}

  async reserve(principal: Principal, execution: { executionId: string; amountMicros: bigint; ttlMs: number }): Promise<void> {
    const { executionId, amountMicros, ttlMs } = execution;
    const answer = await this.ledger.reserve({ tenantId: principal.tenantId, requestId: executionId, ...billedSubjectOf(principal), amountMicros, ttlMs });
    if (answer.status === 'refused') {
      const resets = answer.resetsAt ? `, resets at ${answer.resetsAt}` : '';
      throw new PalisadeError('rate_limited', `the ${answer.level} budget has no room for this execution (limit ${answer.limitMicros} micro-units${resets})`, {
        budget: { level: answer.level, limitMicros: answer.limitMicros, ...(answer.resetsAt ? { resetsAt: answer.resetsAt } : {}) },
      });
    }
  }

  async price(tenantId: string, template: string, usage: readonly MeteredQuantity[]): Promise<bigint> {
    try {
      return await this.ledger.quote({ tenantId, provider: SANDBOX_PRICE_PROVIDER, model: template, usage });
    } catch (error) {
      if (error instanceof PalisadeError && error.code === 'not_found') {
        throw new PalisadeError('unavailable', `billing has no price for sandbox usage of template ${template} (provider ${SANDBOX_PRICE_PROVIDER}): refused, nothing runs unpriced`);
      }
      throw error;
    }
  }

  async release(tenantId: string, executionId: string): Promise<void> {
    await this.ledger.release({ tenantId, requestId: executionId });
  }
}
