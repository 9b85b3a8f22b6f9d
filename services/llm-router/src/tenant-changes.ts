import type { Siblings } from '@palisade/service-kit';

const TOPIC = 'llm-router:tenant-changed';

/**
 * A tenant's router configuration changed (catalog, settings, guard policy, a provider
 * key): every process of this router (LLM_ROUTER_WORKERS) drops what it cached of the
 * tenant before the change's caller is answered, so the next call sees the change
 * whichever worker takes it. Other router instances see it within their cache time.
 */
export class TenantChanges {
  constructor(
    private readonly siblings: Pick<Siblings, 'on' | 'broadcast'>,
    private readonly logger: { warn(obj: object, msg: string): void },
  ) {}

  /** What this process drops when a tenant changes (here or in a sibling). */
  onChange(drop: (tenantId: string) => void): void {
    this.siblings.on(TOPIC, (payload) => {
      const tenantId = (payload as { tenantId?: unknown } | null)?.tenantId;
      if (typeof tenantId === 'string') drop(tenantId);
    });
  }

  async changed(tenantId: string): Promise<void> {
    const { missed } = await this.siblings.broadcast(TOPIC, { tenantId });
    // a worker that did not answer in time keeps its copy until its cache time runs out (-1: the primary did not answer)
    if (missed !== 0) this.logger.warn({ tenantId, workers: missed }, 'a change did not reach every worker in time; they see it when their cached copy runs out');
  }
}
