import { isPalisadeError, type EventEnvelope, type ServiceName } from '@palisade/contracts';
import { EventBroadcastSubscription, rpcRequest, type NatsConnection, type NatsLogger, type RpcSigner } from '@palisade/nats';
import { AUTHORIZE_BATCH_SUBJECT, AUTHORIZE_SUBJECT, POLICY_EVENTS, type AuthorizeDecision, type AuthorizeRequest } from './types';

export interface PolicyClientOptions {
  nc: NatsConnection;
  /** Default 2 s: past that, the decision is a denial. */
  timeoutMs?: number;
  /** Decisions kept per instance (least recently used go first). Default 10,000; 0 disables the cache. */
  cacheSize?: number;
  /** Upper bound on a cached decision's life, even without an invalidation. Default 30 s. */
  cacheTtlMs?: number;
  logger?: NatsLogger;
  now?: () => number;
  /**
   * Decisions asked while others are being gathered (same event-loop turn) go to the
   * service as one `authorize-batch` request (at most this many per request): many
   * concurrent callers cost a few NATS round trips instead of one each. Default 100;
   * 1 sends every decision on its own.
   */
  coalesce?: number;
  /**
   * The service's identity (ServiceIdentity): requests carrying an approval token are
   * signed with it (`Palisade-Caller`), since the policy service redeems a token over NATS
   * only for a proven caller (issue 10). Without it such requests are denied.
   */
  signAs?: RpcSigner;
}

interface Waiting {
  request: AuthorizeRequest;
  resolve: (decision: AuthorizeDecision) => void;
}

interface Entry {
  decision: AuthorizeDecision;
  expires: number;
  tenantId: string;
}

const FAILED_RULE = 'policy-unavailable';
/**
 * Denials that say nothing about the rules, only that no decision could be made now (the
 * service unreachable, its policy state stale, a failure while deciding): never cached,
 * so a caller does not go on denying for the cache's lifetime once the service recovers.
 */
const TRANSIENT_RULES: ReadonlySet<string> = new Set([FAILED_RULE, 'policy-stale', 'decision-failed']);

/** A denial that only says no decision could be made now: the caller answers 503, not 403. */
export const isUndecided = (decision: AuthorizeDecision): boolean => decision.decision !== 'allow' && TRANSIENT_RULES.has(decision.rule);
/** Most decisions the service takes in one batch request. */
const MAX_BATCH = 1000;

/** What a denial looks like when the policy service could not be asked. */
export const failClosed = (reason: string): AuthorizeDecision => ({ decision: 'deny', rule: FAILED_RULE, reason });

/**
 * Asks the policy service over NATS. Fail-closed: a timeout, an error reply or a
 * malformed answer is a denial, never an exception. Allow/deny answers are cached
 * (not approvals, not explanations, not requests carrying parameters or tokens);
 * a tenant's entries are dropped when a policy event of that tenant arrives
 * (`listen`), and no entry outlives `cacheTtlMs` in any case.
 */
export class PolicyClient {
  private readonly cache = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly size: number;
  private readonly ttl: number;
  private readonly now: () => number;
  private broadcast: EventBroadcastSubscription | undefined;
  /** Bumped per tenant by invalidations, so an answer in flight during one is not cached. */
  private readonly generations = new Map<string, number>();
  private readonly coalesce: number;
  private waiting: Waiting[] = [];

  constructor(private readonly options: PolicyClientOptions) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.size = options.cacheSize ?? 10_000;
    this.ttl = options.cacheTtlMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.coalesce = Math.max(1, Math.min(options.coalesce ?? 100, MAX_BATCH));
  }

  /**
   * Drop cached decisions as policy events arrive: a JetStream push consumer
   * `<service>-policy-cache` (register it in deploy/local/nats-durables.txt) delivered
   * to every instance of the service.
   */
  async listen(service: ServiceName): Promise<void> {
    this.broadcast = new EventBroadcastSubscription({
      nc: this.options.nc,
      service,
      consumer: 'policy-cache',
      filterSubject: POLICY_EVENTS,
      handler: (event) => this.onPolicyEvent(event),
      logger: this.options.logger,
    });
    await this.broadcast.start();
  }

  async close(): Promise<void> {
    await this.broadcast?.stop();
  }

  async authorize(request: AuthorizeRequest): Promise<AuthorizeDecision> {
    const key = cacheKey(request);
    if (key) {
      const hit = this.cache.get(key);
      if (hit && hit.expires > this.now()) {
        this.cache.delete(key); // refresh its recency
        this.cache.set(key, hit);
        return hit.decision;
      }
      if (hit) this.cache.delete(key);
    }
    const generation = this.generations.get(request.tenantId) ?? 0;
    // a redemption is signed, so it travels alone rather than in an unsigned batch
    const decision = await (this.coalesce > 1 && !request.approvalToken ? this.gathered(request) : this.ask(request));
    if (TRANSIENT_RULES.has(decision.rule)) return decision;
    if (key && this.size > 0 && decision.decision !== 'requires_approval' && (this.generations.get(request.tenantId) ?? 0) === generation) {
      this.cache.set(key, { decision, expires: this.now() + this.ttl, tenantId: request.tenantId });
      if (this.cache.size > this.size) this.cache.delete(this.cache.keys().next().value as string);
    }
    return decision;
  }

  /** One decision in its own request; a failure is a denial. */
  private async ask(request: AuthorizeRequest): Promise<AuthorizeDecision> {
    try {
      return checked(await rpcRequest<AuthorizeDecision>(this.options.nc, AUTHORIZE_SUBJECT, request, this.requestOptions([request])));
    } catch (error) {
      this.options.logger?.warn({ err: (error as Error).message }, 'policy decision failed: denied');
      return failClosed('the policy service could not decide');
    }
  }

  /** Wait for the decision with the others asked in this turn of the event loop. */
  private gathered(request: AuthorizeRequest): Promise<AuthorizeDecision> {
    return new Promise((resolve) => {
      if (this.waiting.push({ request, resolve }) === 1) setImmediate(() => this.sendWaiting());
    });
  }

  private sendWaiting(): void {
    const all = this.waiting;
    this.waiting = [];
    for (let i = 0; i < all.length; i += this.coalesce) void this.sendGroup(all.slice(i, i + this.coalesce));
  }

  private async sendGroup(group: Waiting[]): Promise<void> {
    if (group.length === 1) return group[0].resolve(await this.ask(group[0].request));
    let decisions: unknown;
    try {
      ({ decisions } = await rpcRequest<{ decisions: unknown }>(this.options.nc, AUTHORIZE_BATCH_SUBJECT, { requests: group.map((w) => w.request) }, { timeoutMs: this.timeoutMs }));
    } catch (error) {
      if (isPalisadeError(error) && error.code === 'validation') {
        // one malformed request must not deny the others: each is asked on its own
        await Promise.all(group.map(async (w) => w.resolve(await this.ask(w.request))));
        return;
      }
      this.options.logger?.warn({ err: (error as Error).message }, 'policy decisions failed: denied');
      for (const w of group) w.resolve(failClosed('the policy service could not decide'));
      return;
    }
    group.forEach((w, i) => {
      const d = Array.isArray(decisions) && decisions.length === group.length ? (decisions[i] as AuthorizeDecision) : undefined;
      w.resolve(isDecision(d) ? d : failClosed('the policy service gave a malformed answer'));
    });
  }

  /** Several decisions in one request, in order; on failure every one is a denial. */
  async authorizeBatch(requests: readonly AuthorizeRequest[]): Promise<AuthorizeDecision[]> {
    try {
      const { decisions } = await rpcRequest<{ decisions: AuthorizeDecision[] }>(this.options.nc, AUTHORIZE_BATCH_SUBJECT, { requests }, this.requestOptions(requests));
      if (!Array.isArray(decisions) || decisions.length !== requests.length) throw new Error('malformed batch answer');
      return decisions.map(checked);
    } catch (error) {
      this.options.logger?.warn({ err: (error as Error).message }, 'policy batch failed: all denied');
      return requests.map(() => failClosed('the policy service could not decide'));
    }
  }

  /** Signed only when a request redeems an approval: the signature costs, the hot path never pays it. */
  private requestOptions(requests: readonly AuthorizeRequest[]): { timeoutMs: number; signAs?: RpcSigner } {
    const { signAs } = this.options;
    return signAs && requests.some((r) => r.approvalToken) ? { timeoutMs: this.timeoutMs, signAs } : { timeoutMs: this.timeoutMs };
  }

  /** Forget a tenant's cached decisions. */
  invalidate(tenantId: string): void {
    this.generations.set(tenantId, (this.generations.get(tenantId) ?? 0) + 1);
    for (const [key, entry] of this.cache) if (entry.tenantId === tenantId) this.cache.delete(key);
  }

  get cached(): number {
    return this.cache.size;
  }

  private onPolicyEvent(event: EventEnvelope): void {
    this.invalidate(event.tenantId);
    // A platform role change may alter decisions in every tenant.
    if (event.tenantId === 'system') for (const tenant of [...this.generations.keys(), ...new Set([...this.cache.values()].map((e) => e.tenantId))]) this.invalidate(tenant);
  }
}

function isDecision(d: AuthorizeDecision | undefined): d is AuthorizeDecision {
  return !!d && (d.decision === 'allow' || d.decision === 'deny' || d.decision === 'requires_approval');
}

function checked(d: AuthorizeDecision): AuthorizeDecision {
  if (!isDecision(d)) throw new Error('malformed decision');
  return d;
}

function cacheKey(r: AuthorizeRequest): string | undefined {
  if (r.explain || r.approvalToken || r.parameters) return undefined;
  return JSON.stringify([r.tenantId, r.subject.type, r.subject.id, r.subject.actingFor, r.subject.tenantId, r.subject.token, r.action, r.resource.type, r.resource.id, r.resource.tenantId, r.resource.attributes ? sorted(r.resource.attributes) : null, r.resource.fields ?? null]);
}

function sorted(o: Record<string, unknown>): unknown[] {
  return Object.keys(o).sort().map((k) => [k, o[k]]);
}

/** The plain function: true only for an explicit allow. */
export async function isAllowed(client: Pick<PolicyClient, 'authorize'>, request: AuthorizeRequest): Promise<boolean> {
  try {
    return (await client.authorize(request)).decision === 'allow';
  } catch {
    return false;
  }
}
