import { Inject, Injectable } from '@nestjs/common';
import { rpcSubject } from '@palisade/contracts';
import { serveRpc, type RpcServer } from '@palisade/nats';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { askedByService, parseBatchRequest, parseDecisionRequest } from './decisions.dto';
import { DecisionService } from './decisions.service';

export const AUTHORIZE_SUBJECT = rpcSubject('policy', 'authorize');
export const AUTHORIZE_BATCH_SUBJECT = rpcSubject('policy', 'authorize-batch');

/**
 * Decisions over NATS request-reply: `palisade.rpc.policy.authorize` and
 * `…authorize-batch`, answered from plain queue subscriptions (queue `policy`) on the
 * platform's mTLS connection, not through Nest's per-message pipeline: the hot path of
 * every other service. Same wire format, validation (a `validation` error naming the
 * field), coded errors and a SERVER span per request, child of the caller's trace.
 * The asking service is the one whose inbox the reply goes to; it never gets `explain`.
 * Only a request the asking service signed (`Palisade-Caller`, verified against the
 * platform CA: libs/nats rpc-caller.ts) redeems an approval token: any service may name
 * another's inbox (issue 10). Unsigned decisions cost no verification.
 */
@Injectable()
export class DecisionsRpc {
  private server: RpcServer | undefined;

  constructor(
    private readonly decisions: DecisionService,
    @Inject(PLATFORM) platform: Platform,
  ) {
    platform.afterConnect(async (p) => {
      this.server ??= serveRpc(p.nats!, {
        service: 'policy',
        tracer: p.options.tracer,
        logger: p.logger,
        trust: p.options.identity,
        handlers: {
          [AUTHORIZE_SUBJECT]: (payload, _subject, caller, asker) => this.decisions.decide(askedByService(parseDecisionRequest(payload), caller), asker.proven),
          [AUTHORIZE_BATCH_SUBJECT]: (payload, _subject, caller, asker) => {
            const decisions = this.decisions.decideBatch(
              parseBatchRequest(payload).requests.map((r) => askedByService(r, caller)),
              asker.proven,
            );
            return decisions instanceof Promise ? decisions.then((d) => ({ decisions: d })) : { decisions };
          },
        },
      });
      await p.nats!.flush(); // the subscriptions are registered with NATS before the service reports ready
    });
    platform.beforeClose(async () => {
      await this.server?.stop();
      this.server = undefined;
    });
  }
}
