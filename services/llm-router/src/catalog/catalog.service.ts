import { PalisadeError, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore } from '@palisade/eventsourcing';
import { catalogDecider, type CatalogCommand, type CatalogState } from './catalog.decider';
import type { CatalogEvent, ModelDefinition, ProviderDefinition, RouteDefinition, RouterSettings } from './catalog.events';
import type { CatalogRepository } from './catalog.repository';
import type { ProviderKeyStore } from '../providers/provider-keys';
import { TenantCache } from '../tenant-cache';
import type { TenantChanges } from '../tenant-changes';

/** The scope a person needs to change the tenant's providers, models and routes. */
export const ROUTER_ADMIN_SCOPE = 'llm-router:admin';
/**
 * The tenant administrator's scope (auth's `admin` role): it configures the tenant's models
 * too, as it administers billing, since no role of auth gives `llm-router:admin` yet.
 */
export const TENANT_ADMIN_SCOPE = 'auth:admin';

export interface CatalogView extends CatalogState {
  etag: number;
}

export interface CatalogServiceDependencies {
  store: EventStore;
  repo: Pick<CatalogRepository, 'catalog' | 'projection'>;
  eventContext: EventFactoryContext;
  /** How long a tenant's catalog is served from memory on the request path (other instances' changes show within it). */
  cacheMs: number;
  /** A change drops the tenant's cached copies in every process of this router before it is answered. */
  changes: Pick<TenantChanges, 'onChange' | 'changed'>;
  /** Provider API keys go to the vault; the catalog keeps their secret ids only. */
  keys: ProviderKeyStore;
  logger: { warn(obj: object, msg: string): void };
  now?: () => Date;
}

/**
 * A tenant's providers, models and routes (stream `llm-catalog-<tenant>`), changed by its
 * router administrators (people with `llm-router:admin`); read on every model call from
 * a short per-instance cache.
 */
export class CatalogService {
  private readonly handler: CommandHandler<CatalogState, CatalogCommand, CatalogEvent>;
  private readonly cache: TenantCache<CatalogState>;
  private readonly now: () => Date;

  constructor(private readonly d: CatalogServiceDependencies) {
    this.handler = new CommandHandler(d.store, catalogDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
    this.now = d.now ?? (() => new Date());
    this.cache = new TenantCache(d.cacheMs);
    d.changes.onChange((tenantId) => this.cache.delete(tenantId));
  }

  async view(principal: Principal): Promise<CatalogView> {
    requireAdmin(principal);
    const row = await this.d.repo.catalog(principal.tenantId);
    return row ? { ...row.state, etag: row.version } : { ...catalogDecider.initialState(), etag: 0 };
  }

  /** The catalog a model call routes on. */
  async current(tenantId: string): Promise<CatalogState> {
    return this.cache.get(tenantId, async () => (await this.d.repo.catalog(tenantId))?.state ?? catalogDecider.initialState());
  }

  /**
   * A provider; its API key, when given, is stored in the vault first (created, or rotated
   * under the same secret id) and only the secret id is recorded. A key no provider
   * references any more is removed from the vault.
   */
  async registerProvider(principal: Principal, input: ProviderDefinition & { apiKey?: string }, ifMatch?: number) {
    requireAdmin(principal);
    const { apiKey, ...provider } = input;
    if (apiKey !== undefined) provider.apiKeySecretId = await this.d.keys.store(principal.tenantId, provider.providerId, apiKey);
    return this.withoutOrphanKeys(principal.tenantId, () => this.change(principal, { type: 'register-provider', data: provider }, ifMatch));
  }

  removeProvider(principal: Principal, providerId: string, ifMatch?: number) {
    requireAdmin(principal);
    return this.withoutOrphanKeys(principal.tenantId, () => this.change(principal, { type: 'remove-provider', data: { providerId } }, ifMatch));
  }

  private async withoutOrphanKeys(tenantId: string, change: () => Promise<CatalogView>): Promise<CatalogView> {
    const keysOf = (state: CatalogState | undefined) => new Set(Object.values(state?.providers ?? {}).flatMap((p) => (p.apiKeySecretId ? [p.apiKeySecretId] : [])));
    const before = keysOf((await this.d.repo.catalog(tenantId))?.state);
    const view = await change();
    const after = keysOf(view);
    for (const secretId of before) {
      if (after.has(secretId)) continue;
      await this.d.keys.remove(tenantId, secretId).catch((error: unknown) => this.d.logger.warn({ tenantId, secretId, code: (error as PalisadeError).code }, 'a provider key no provider uses stays in the vault'));
    }
    return view;
  }

  registerModel(principal: Principal, model: ModelDefinition, ifMatch?: number) {
    return this.change(principal, { type: 'register-model', data: model }, ifMatch);
  }

  removeModel(principal: Principal, modelId: string, ifMatch?: number) {
    return this.change(principal, { type: 'remove-model', data: { modelId } }, ifMatch);
  }

  configureRoute(principal: Principal, route: RouteDefinition, ifMatch?: number) {
    return this.change(principal, { type: 'configure-route', data: route }, ifMatch);
  }

  removeRoute(principal: Principal, routeId: string, ifMatch?: number) {
    return this.change(principal, { type: 'remove-route', data: { routeId } }, ifMatch);
  }

  configureSettings(principal: Principal, settings: RouterSettings, ifMatch?: number) {
    return this.change(principal, { type: 'configure-settings', data: settings }, ifMatch);
  }

  private async change(principal: Principal, command: Omit<CatalogCommand, 'metadata'>, ifMatch?: number): Promise<CatalogView> {
    requireAdmin(principal);
    const metadata = { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() };
    const result = await this.handler.handle(streamName('llm-catalog', principal.tenantId), { ...command, metadata } as CatalogCommand, { expectedVersion: ifMatch });
    await this.d.changes.changed(principal.tenantId);
    return { ...result.state, etag: result.version };
  }
}

function requireAdmin(principal: Principal): void {
  if (principal.type !== 'user' || !(principal.scopes?.includes(ROUTER_ADMIN_SCOPE) || principal.scopes?.includes(TENANT_ADMIN_SCOPE))) {
    throw new PalisadeError('forbidden', `the tenant's models are configured by people with the ${ROUTER_ADMIN_SCOPE} or ${TENANT_ADMIN_SCOPE} scope`);
  }
}
