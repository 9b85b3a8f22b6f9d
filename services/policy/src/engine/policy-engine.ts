import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import type { EventEnvelope } from '@palisade/contracts';
import { toDomainEvent } from '@palisade/eventsourcing';
import { counter, gauge } from '@palisade/observability';
import { EventTail } from '@palisade/postgres';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { PLATFORM_TENANT } from '../model/policy.model';
import { POLICY_SETTINGS, type PolicySettings } from '../policy.config';
import { TenantPolicy } from '../model/tenant-policy';
import { isPermissionEvent, type PermissionEvent } from '../policyset/policyset.events';

/**
 * The policy of every tenant this instance has been asked about, in memory. A tenant
 * is loaded from its own events on first use (filtered by tenant: one tenant's size
 * never costs another anything), then kept current by the event tail: every
 * instance applies each committed permission change as it comes (typically within
 * milliseconds of the commit), never reloading a tenant per change. At most
 * `POLICY_MAX_TENANTS` tenants stay in memory: the least recently asked about is
 * dropped first (it is loaded again from its events when next asked about).
 *
 * The tail reconnects by itself after a lost connection; while it is more than
 * EVENT_LAG_MAX_MS behind (disconnected, or not caught up), the engine knows its
 * state may be stale: `staleness` says so, decisions are denied, and readiness fails.
 */
@Injectable()
export class PolicyEngine {
  private readonly tenants: LRUCache<string, TenantPolicy>;
  private readonly loading = new Map<string, Promise<TenantPolicy>>();
  private readonly tail: EventTail;
  private readonly applied;
  private readonly loaded;
  private readonly maxLagMs: number;

  constructor(@Inject(PLATFORM) platform: Platform, @Inject(POLICY_SETTINGS) settings: PolicySettings) {
    this.maxLagMs = platform.maxEventLagMs;
    this.tail = new EventTail({
      connection: platform.connection('app'),
      typePattern: 'policy.%',
      logger: platform.logger,
      onEvents: (events) => this.onEvents(events),
    });
    const metrics = platform.options.metrics;
    this.applied = counter(metrics, 'palisade_policy_changes_applied_total', 'Permission change events applied to in-memory tenant policies');
    this.loaded = gauge(metrics, 'palisade_policy_tenants_loaded', 'Tenants whose policy this instance holds in memory');
    const evicted = counter(metrics, 'palisade_policy_tenants_evicted_total', 'Idle tenants dropped from memory to stay within POLICY_MAX_TENANTS');
    this.tenants = new LRUCache<string, TenantPolicy>({
      max: settings.maxTenants,
      dispose: (_policy, _tenantId, reason) => {
        if (reason === 'evict') evicted.inc();
      },
    });
    platform.follow('policy-tail', () => this.tail.status());
    platform.afterConnect(() => this.tail.start());
    platform.beforeClose(() => this.tail.stop());
  }

  /**
   * Why the in-memory policies may be stale (the tail is more than EVENT_LAG_MAX_MS
   * behind the event store), or undefined while they are current.
   */
  staleness(now = Date.now()): string | undefined {
    const lag = this.tail.lagMs(now);
    if (lag <= this.maxLagMs) return undefined;
    return lag === Infinity ? 'policy changes are not being followed yet' : `policy changes last read ${(lag / 1000).toFixed(1)} s ago`;
  }

  /** The tenant's policy if it is in memory (the synchronous fast path); marks it recently used. */
  peek(tenantId: string): TenantPolicy | undefined {
    return this.tenants.get(tenantId);
  }

  /** The tenant's policy, loading it from its events on first use. An unknown tenant has an empty policy. */
  policyOf(tenantId: string): Promise<TenantPolicy> {
    const known = this.tenants.get(tenantId);
    if (known) return Promise.resolve(known);
    let pending = this.loading.get(tenantId);
    if (!pending) {
      pending = this.load(tenantId).finally(() => this.loading.delete(tenantId));
      this.loading.set(tenantId, pending);
    }
    return pending;
  }

  /** The policies a decision in `tenantId` may read. */
  async lookup(tenantId: string, subjectTenant: string | undefined): Promise<{ tenant: TenantPolicy; platform: TenantPolicy | undefined }> {
    const tenant = this.peek(tenantId) ?? (await this.policyOf(tenantId));
    const crosses = subjectTenant === PLATFORM_TENANT && tenantId !== PLATFORM_TENANT;
    const platform = crosses ? (this.peek(PLATFORM_TENANT) ?? (await this.policyOf(PLATFORM_TENANT))) : undefined;
    return { tenant, platform };
  }

  /** How many tenants are in memory. */
  get tenantsInMemory(): number {
    return this.tenants.size;
  }

  /** Apply what committed up to now (after a local change, so its author reads it back). */
  catchUp(): Promise<void> {
    return this.tail.catchUp();
  }

  private async load(tenantId: string): Promise<TenantPolicy> {
    const policy = new TenantPolicy(tenantId);
    await this.tail.load(tenantId, (events) => {
      for (const e of events) if (isPermissionEvent(e)) policy.apply(toDomainEvent<PermissionEvent>(e));
      this.tenants.set(tenantId, policy);
    });
    this.loaded.set(this.tenants.size);
    return policy;
  }

  private onEvents(events: EventEnvelope[]): void {
    for (const e of events) {
      if (!isPermissionEvent(e)) continue;
      const policy = this.tenants.peek(e.tenantId); // a change is not a use
      if (!policy) continue; // loaded from its events when first asked about
      policy.apply(toDomainEvent<PermissionEvent>(e));
      this.applied.inc();
    }
  }
}
