import { PalisadeError, rpcSubject, type ServiceName } from '@palisade/contracts';
import { serveRpc, type RpcServer } from '@palisade/nats';
import type { Platform } from '@palisade/service-kit';
import { parse } from '../validation';
import { releaseSchema, remainingSchema, reserveSchema, settleSchema } from './ledger.dto';
import type { LedgerService } from './ledger.service';
import { quoteSchema } from '../prices/prices.dto';
import type { PricesService } from '../prices/prices.service';

export const RESERVE_SUBJECT = rpcSubject('billing', 'reserve');
export const SETTLE_SUBJECT = rpcSubject('billing', 'settle');
export const RELEASE_SUBJECT = rpcSubject('billing', 'release');
export const REMAINING_SUBJECT = rpcSubject('billing', 'remaining');
export const QUOTE_SUBJECT = rpcSubject('billing', 'quote');

/** Who may spend: NATS permissions (deploy/local/nats-requests.txt) say so first; this says it again. */
export const LEDGER_CALLERS: readonly ServiceName[] = ['llm-router', 'sandbox-orchestrator'];

function callerOf(caller: ServiceName | undefined): ServiceName {
  if (!caller || !LEDGER_CALLERS.includes(caller)) throw new PalisadeError('forbidden', 'only llm-router and sandbox-orchestrator use the ledger');
  return caller;
}

/**
 * The fast path over NATS request-reply (mTLS, per-method permissions), answered from
 * plain queue subscriptions (`serveRpc`): reserve, settle, release, remaining, and quote
 * (the cost of a usage at the price table in force, so the router can hold the worst case). Thin:
 * validate, call one method. A refusal is an answer (`status: refused`, the level, its
 * limit and when it resets), not an error: the caller turns it into its 429.
 */
export class LedgerRpc {
  private server: RpcServer | undefined;

  constructor(
    platform: Platform,
    ledger: () => Pick<LedgerService, 'reserve' | 'settle' | 'release' | 'remaining'>,
    prices: () => Pick<PricesService, 'quote'>,
  ) {
    platform.afterConnect(async (p) => {
      this.server ??= serveRpc(p.nats!, {
        service: 'billing',
        tracer: p.options.tracer,
        logger: p.logger,
        handlers: {
          [RESERVE_SUBJECT]: (payload, _s, caller) => ledger().reserve(callerOf(caller), parse(reserveSchema, payload)),
          [SETTLE_SUBJECT]: (payload, _s, caller) => ledger().settle(callerOf(caller), parse(settleSchema, payload)),
          [RELEASE_SUBJECT]: (payload, _s, caller) => ledger().release(callerOf(caller), parse(releaseSchema, payload)),
          [REMAINING_SUBJECT]: (payload, _s, caller) => {
            callerOf(caller);
            const r = parse(remainingSchema, payload);
            return ledger().remaining(r.tenantId, r.agentId, r.teamId ?? null, r.userId ?? null);
          },
          [QUOTE_SUBJECT]: (payload, _s, caller) => {
            callerOf(caller);
            const q = parse(quoteSchema, payload);
            return prices().quote(q.tenantId, { provider: q.provider, model: q.model, quantities: q.usage });
          },
        },
      });
      await p.nats!.flush();
    });
    platform.beforeClose(async () => {
      await this.server?.stop();
      this.server = undefined;
    });
  }
}
