import { Inject, Injectable } from '@nestjs/common';
import { isPalisadeError, type Principal } from '@palisade/contracts';
import { counter, type Counter } from '@palisade/observability';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { ApprovalsService } from '../approvals/approvals.service';
import { PolicyEngine } from '../engine/policy-engine';
import { evaluate } from '../model/evaluate';
import type { Decision, DecisionRequest } from '../model/policy.model';
import { missingAgentToken, verifiedAgentRequest, verifiedUserRequest } from './agent-subject';
import { ForwardedTokens } from './forwarded-tokens';

/**
 * Answers `authorize`: the pure evaluation over the tenant's in-memory policy, plus
 * the redemption of an approval token for a critical action. Anything that goes
 * wrong while deciding is a denial, never an error (fail closed), and so is every
 * decision while the engine's policies may be stale (its tail is behind).
 */
@Injectable()
export class DecisionService {
  private readonly decisions: Counter;

  constructor(
    private readonly engine: PolicyEngine,
    private readonly approvals: ApprovalsService,
    @Inject(PLATFORM) private readonly platform: Platform,
    @Inject(ForwardedTokens) private readonly tokens: Pick<ForwardedTokens, 'principalOf'>,
  ) {
    this.decisions = counter(platform.options.metrics, 'palisade_policy_decisions_total', 'Authorization decisions by outcome', ['decision']);
  }

  /** Over HTTPS: the asking service (`askedBy`) is proven by its mTLS client certificate. */
  async authorize(request: DecisionRequest): Promise<Decision> {
    return this.decide(request, true);
  }

  /** Over HTTPS, as `authorize`. */
  authorizeBatch(requests: readonly DecisionRequest[]): Promise<Decision[]> {
    return Promise.resolve(this.decideBatch(requests, true));
  }

  /**
   * The decision: synchronous (no promise, no microtask) when the tenant's policy is in
   * memory and no approval is redeemed, which is nearly every request on a warm instance.
   * `askerProven`: whether `request.askedBy` is proven (client certificate, signed NATS
   * request) rather than only named by the NATS inbox the answer goes to; only a proven
   * asker redeems an approval token (issue 10).
   */
  decide(request: DecisionRequest, askerProven = false): Decision | Promise<Decision> {
    const stale = this.engine.staleness();
    if (stale !== undefined) return this.settle(this.stale(stale));
    // An agent is who its verified token says, acting for the user the token names
    // (the administrators' explain asks about an agent and user they name themselves).
    if (request.subject.type === 'agent' && request.explain !== true) return this.forAgent(request, askerProven);
    // A person whose token the asking service forwards is who (and in which teams) it says.
    if (request.subject.type === 'user' && request.subject.token !== undefined && request.explain !== true) return this.forUser(request, askerProven);
    return this.decideVerified(request, askerProven);
  }

  private async forAgent(request: DecisionRequest, askerProven: boolean): Promise<Decision> {
    const verified = verifiedAgentRequest(request, await this.holderOf(request, missingAgentToken(request)));
    return 'decision' in verified ? this.settle(verified) : this.decideVerified(verified, askerProven);
  }

  private async forUser(request: DecisionRequest, askerProven: boolean): Promise<Decision> {
    const verified = verifiedUserRequest(request, await this.holderOf(request, 'the asking service is unknown'));
    return 'decision' in verified ? this.settle(verified) : this.decideVerified(verified, askerProven);
  }

  /** The forwarded token's principal, verified for the asking service's audience, or why not. */
  private async holderOf(request: DecisionRequest, missing: string): Promise<Principal | string> {
    const { token } = request.subject;
    if (!token || !request.askedBy) return missing;
    try {
      return await this.tokens.principalOf(token, request.askedBy);
    } catch (error) {
      return isPalisadeError(error) ? error.message : 'it could not be verified';
    }
  }

  private decideVerified(request: DecisionRequest, askerProven: boolean): Decision | Promise<Decision> {
    let outcome: Decision | Promise<Decision>;
    try {
      const tenant = this.engine.peek(request.tenantId);
      const subjectTenant = request.subject.tenantId;
      outcome =
        tenant && subjectTenant === undefined
          ? this.complete(request, evaluate(request, { tenant, platform: undefined }), askerProven)
          : this.engine.lookup(request.tenantId, subjectTenant).then((policies) => this.complete(request, evaluate(request, policies), askerProven));
    } catch (error) {
      return this.settle(this.failed(request, error));
    }
    return outcome instanceof Promise ? outcome.catch((error: unknown) => this.failed(request, error)).then((d) => this.settle(d)) : this.settle(outcome);
  }

  /** Every decision of a batch, in order (synchronous when each one is); `askerProven` as for `decide`. */
  decideBatch(requests: readonly DecisionRequest[], askerProven = false): Decision[] | Promise<Decision[]> {
    const decisions = requests.map((r) => this.decide(r, askerProven));
    return decisions.some((d) => d instanceof Promise) ? Promise.all(decisions) : (decisions as Decision[]);
  }

  private complete(request: DecisionRequest, decision: Decision, askerProven: boolean): Decision | Promise<Decision> {
    return decision.decision === 'requires_approval' && request.approvalToken ? this.redeem(request, decision, askerProven) : decision;
  }

  private failed(request: DecisionRequest, error: unknown): Decision {
    this.platform.logger.error({ err: (error as Error).message, tenantId: request.tenantId }, 'decision failed: denied');
    return { decision: 'deny', rule: 'decision-failed', reason: 'the decision could not be made' };
  }

  private stale(why: string): Decision {
    return { decision: 'deny', rule: 'policy-stale', reason: `the policy state may be stale (${why}): denied until it is current` };
  }

  private settle(decision: Decision): Decision {
    this.decisions.inc({ decision: decision.decision });
    return decision;
  }

  private async redeem(request: DecisionRequest, pending: Decision, askerProven: boolean): Promise<Decision> {
    try {
      await this.approvals.consume(request, request.approvalToken!, pending.actionHash!, askerProven);
      const { actionHash: _hash, ...rest } = pending;
      void _hash;
      return { ...rest, decision: 'allow', rule: 'approval', reason: 'critical action approved; the approval is now used' };
    } catch (error) {
      if (isPalisadeError(error) && error.code === 'forbidden') {
        return { ...pending, decision: 'deny', rule: 'approval', reason: error.message };
      }
      throw error;
    }
  }
}
