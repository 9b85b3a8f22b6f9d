import { PalisadeError, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, foldEvents, streamName, toDomainEvent, type EventStore } from '@palisade/eventsourcing';
import { ROUTER_ADMIN_SCOPE, TENANT_ADMIN_SCOPE } from '../catalog/catalog.service';
import { guardPolicyDecider, type GuardPolicyCommand, type GuardPolicyState } from './guard-policy.decider';
import type { GuardPolicy, GuardPolicyEvent } from './guard-policy.events';
import { TenantCache } from '../tenant-cache';
import type { TenantChanges } from '../tenant-changes';

export interface GuardPolicyView extends GuardPolicy {
  etag: number;
}

export interface GuardPolicyServiceDependencies {
  store: EventStore;
  eventContext: EventFactoryContext;
  /** How long a tenant's policy is served from memory on the request path (another instance's change shows within it). */
  cacheMs: number;
  /** A change drops the tenant's cached copies in every process of this router before it is answered. */
  changes: Pick<TenantChanges, 'onChange' | 'changed'>;
  now?: () => Date;
}

const streamOf = (tenantId: string) => streamName('llm-guards', tenantId);

/**
 * A tenant's guard policy (stream `llm-guards-<tenant>`, a handful of events: read
 * whole, no read model), changed by the tenant's router administrators and read on
 * every model call from a short per-instance cache.
 */
export class GuardPolicyService {
  private readonly handler: CommandHandler<GuardPolicyState, GuardPolicyCommand, GuardPolicyEvent>;
  private readonly cache: TenantCache<GuardPolicy>;
  private readonly now: () => Date;

  constructor(private readonly d: GuardPolicyServiceDependencies) {
    this.handler = new CommandHandler(d.store, guardPolicyDecider, { eventContext: d.eventContext, tenantScoped: true });
    this.now = d.now ?? (() => new Date());
    this.cache = new TenantCache(d.cacheMs);
    d.changes.onChange((tenantId) => this.cache.delete(tenantId));
  }

  async view(principal: Principal): Promise<GuardPolicyView> {
    requireAdmin(principal);
    const { state, version } = await this.load(principal.tenantId);
    return { ...state.policy, etag: version };
  }

  /** The policy a model call is guarded by. */
  async current(tenantId: string): Promise<GuardPolicy> {
    return this.cache.get(tenantId, async () => (await this.load(tenantId)).state.policy);
  }

  async configure(principal: Principal, policy: GuardPolicy, ifMatch?: number): Promise<GuardPolicyView> {
    requireAdmin(principal);
    const metadata = { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() };
    const result = await this.handler.handle(streamOf(principal.tenantId), { type: 'configure-guard-policy', data: policy, metadata }, { expectedVersion: ifMatch });
    await this.d.changes.changed(principal.tenantId);
    return { ...result.state.policy, etag: result.version };
  }

  private async load(tenantId: string): Promise<{ state: GuardPolicyState; version: number }> {
    const stream = await this.d.store.inTransaction((tx) => this.d.store.readStream(tx, streamOf(tenantId)));
    // the stream name carries the tenant; an event of another tenant in it is never read
    const events = stream.events.filter((s) => s.event.tenantId === tenantId).map((s) => toDomainEvent<GuardPolicyEvent>(s.event));
    return { state: foldEvents(guardPolicyDecider, events), version: stream.version };
  }
}

function requireAdmin(principal: Principal): void {
  if (principal.type !== 'user' || !(principal.scopes?.includes(ROUTER_ADMIN_SCOPE) || principal.scopes?.includes(TENANT_ADMIN_SCOPE))) {
    throw new PalisadeError('forbidden', `the tenant's guard policy is configured by people with the ${ROUTER_ADMIN_SCOPE} or ${TENANT_ADMIN_SCOPE} scope`);
  }
}
