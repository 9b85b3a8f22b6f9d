import { PalisadeError, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore } from '@palisade/eventsourcing';
import { requireTenantAdmin } from '../admins';
import { tenantQuotasDecider, type TenantQuotasCommand, type TenantQuotasState } from './tenant-quotas.decider';
import type { TenantQuotas, TenantQuotasEvent } from './tenant-quotas.events';
import type { TenantQuotasRepository, TenantQuotasRow } from './tenant-quotas.repository';

export type TenantQuotasView = TenantQuotas & {
  tenantId: string;
  /** `tenant`: the tenant's own setting; `platform`: none, the platform's apply. */
  source: 'tenant' | 'platform';
  /** The platform's quotas: the defaults and the most a tenant may set. */
  platform: TenantQuotas;
  /** The window CPU-seconds count in (the platform's). */
  cpuWindowHours: number;
  etag: number;
};

export interface TenantQuotasServiceDependencies {
  store: EventStore;
  repo: Pick<TenantQuotasRepository, 'quotasOf' | 'projection'>;
  /** The platform's quotas (environment): where a tenant set none, and the most it may set. */
  platform: TenantQuotas & { cpuWindowMs: number };
  eventContext: EventFactoryContext;
  now?: () => Date;
}

const WHAT = 'sandbox quotas';
/** How long the quotas in force are reused (each creation and execution asks; a change made here applies at once, elsewhere within this). */
const QUOTAS_TTL_MS = 5000;

/**
 * A tenant's own sandbox quotas (stream `tenant_quotas-<tenant>`): concurrent sandboxes
 * and CPU-seconds per window, each at most the platform's. Read and changed by the
 * tenant's administrators (people with policy:admin) only; agents never; another
 * tenant's are not found. `quotasFor` is what the sandboxes enforce.
 */
export class TenantQuotasService {
  private readonly handler: CommandHandler<TenantQuotasState, TenantQuotasCommand, TenantQuotasEvent>;
  private readonly now: () => Date;
  private readonly cache = new Map<string, { at: number; quotas: Promise<TenantQuotas> }>();

  constructor(private readonly d: TenantQuotasServiceDependencies) {
    this.handler = new CommandHandler(d.store, tenantQuotasDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
    this.now = d.now ?? (() => new Date());
  }

  async get(principal: Principal, tenantId: string): Promise<TenantQuotasView> {
    this.administers(principal, tenantId);
    return this.view(tenantId);
  }

  /** Replaces the tenant's quotas; `ifMatch`: the version read before (409 when it changed; 0: only if never set). */
  async set(principal: Principal, tenantId: string, quotas: TenantQuotas, ifMatch?: number): Promise<TenantQuotasView> {
    this.administers(principal, tenantId);
    await this.handler.handle(streamName('tenant_quotas', tenantId), this.command(principal, { type: 'set', data: { quotas, platform: this.platformQuotas() } }), { expectedVersion: ifMatch });
    this.cache.delete(tenantId);
    return this.view(tenantId);
  }

  /** Removes the tenant's quotas: the platform's apply again. */
  async remove(principal: Principal, tenantId: string, ifMatch?: number): Promise<void> {
    this.administers(principal, tenantId);
    await this.handler.handle(streamName('tenant_quotas', tenantId), this.command(principal, { type: 'remove', data: {} }), { expectedVersion: ifMatch });
    this.cache.delete(tenantId);
  }

  /**
   * The quotas in force for a tenant: its own, else the platform's. Reused for 5 s (every
   * creation and execution asks); a change through this instance applies to the next one at
   * once, through another instance within 5 s.
   */
  quotasFor(tenantId: string): Promise<TenantQuotas> {
    const hit = this.cache.get(tenantId);
    const now = this.now().getTime();
    if (hit && now - hit.at < QUOTAS_TTL_MS) return hit.quotas;
    const quotas = this.d.repo.quotasOf(tenantId).then((row) => ownQuotas(row) ?? this.platformQuotas());
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tenantId, { at: now, quotas });
    quotas.catch(() => this.cache.delete(tenantId));
    return quotas;
  }

  private async view(tenantId: string): Promise<TenantQuotasView> {
    const row = await this.d.repo.quotasOf(tenantId);
    const platform = this.platformQuotas();
    const own = ownQuotas(row);
    return { tenantId, ...(own ?? platform), source: own ? 'tenant' : 'platform', platform, cpuWindowHours: this.d.platform.cpuWindowMs / 3_600_000, etag: row?.version ?? 0 };
  }

  /** The platform's quotas, without its window. */
  private platformQuotas(): TenantQuotas {
    const { maxSandboxes, cpuSeconds } = this.d.platform;
    return { maxSandboxes, cpuSeconds };
  }

  /** Another tenant's quotas are not found (whoever asks); then only the tenant's administrators. */
  private administers(principal: Principal, tenantId: string): void {
    if (principal.tenantId !== tenantId) throw new PalisadeError('not_found', 'tenant not found');
    requireTenantAdmin(principal, WHAT);
  }

  private command(principal: Principal, command: Omit<TenantQuotasCommand, 'metadata'>): TenantQuotasCommand {
    return { ...command, metadata: { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() } } as TenantQuotasCommand;
  }
}

/** The tenant's own quotas, if set (a removed setting keeps its row, not its quotas). */
function ownQuotas(row: TenantQuotasRow | undefined): TenantQuotas | undefined {
  return row?.status === 'set' ? { maxSandboxes: row.maxSandboxes, cpuSeconds: row.cpuSeconds } : undefined;
}
