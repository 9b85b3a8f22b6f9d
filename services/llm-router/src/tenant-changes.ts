import type { Siblings } from '@palisade/service-kit';

const TOPIC = 'llm-router:tenant-changed';

/**
 * The subjects of the events that change what the router caches of a tenant, each pushed
 * to every router instance by a durable of its own (deploy/local/nats-durables.txt: one
 * filter per durable, and `palisade.events.llm-router.>` would bring every model call).
 */
export const CONFIG_EVENT_FEEDS: ReadonlyArray<{ consumer: string; filterSubject: string }> = [
  { consumer: 'provider-cache', filterSubject: 'palisade.events.llm-router.provider.>' },
  { consumer: 'model-cache', filterSubject: 'palisade.events.llm-router.model.>' },
  { consumer: 'route-cache', filterSubject: 'palisade.events.llm-router.route.>' },
  { consumer: 'settings-cache', filterSubject: 'palisade.events.llm-router.settings.>' },
  { consumer: 'guard-cache', filterSubject: 'palisade.events.llm-router.guard-policy.>' },
];

/**
 * A tenant's router configuration changed (catalog, settings, guard policy, a provider
 * key): every process of this router (LLM_ROUTER_WORKERS) drops what it cached of the
 * tenant before the change's caller is answered, so the next call sees the change
 * whichever worker takes it; other router instances drop theirs when the change's event
 * reaches them (`dropHere`, from CONFIG_EVENT_FEEDS: tens of milliseconds after the
 * commit), and within their cache time if it never does.
 */
export class TenantChanges {
  private readonly drops: Array<(tenantId: string) => void> = [];

  constructor(
    private readonly siblings: Pick<Siblings, 'on' | 'broadcast'>,
    private readonly logger: { warn(obj: object, msg: string): void },
  ) {
    siblings.on(TOPIC, (payload) => {
      const tenantId = (payload as { tenantId?: unknown } | null)?.tenantId;
      if (typeof tenantId === 'string') this.dropHere(tenantId);
    });
  }

  /** What this process drops when a tenant changes (here, in a sibling or in another instance). */
  onChange(drop: (tenantId: string) => void): void {
    this.drops.push(drop);
  }

  /** Drops this process's copies of the tenant (a change made here, through a sibling, or through another instance). */
  dropHere(tenantId: string): void {
    for (const drop of this.drops) drop(tenantId);
  }

  async changed(tenantId: string): Promise<void> {
    const { missed } = await this.siblings.broadcast(TOPIC, { tenantId });
    // a worker that did not answer in time keeps its copy until its cache time runs out (-1: the primary did not answer)
    if (missed !== 0) this.logger.warn({ tenantId, workers: missed }, 'a change did not reach every worker in time; they see it when their cached copy runs out');
  }
}
