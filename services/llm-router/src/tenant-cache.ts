interface Entry<T> {
  value: T;
  /** Served until then: `ttlMs` after its load began. */
  until: number;
  /** From then on the next read starts loading its successor in the background. */
  refreshAt: number;
}

/**
 * A per-instance, per-tenant cache of what the request path reads on every call (the
 * catalog, the guard policy): an entry is served for `ttlMs` from when its load began,
 * never longer; another instance's change shows within that time, this instance's own is
 * dropped at once (`delete`, which also discards loads begun before it). Concurrent misses
 * share one load, and a read in the second half of an entry's life loads its successor in
 * the background, so a busy tenant's calls do not all wait for the database each time
 * the entry runs out. Past 10,000 tenants the whole cache is dropped.
 */
export class TenantCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly loading = new Map<string, Promise<T>>();
  /** Bumped by `delete`: a load begun under an older generation is not kept. */
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(tenantId: string, load: () => Promise<T>): Promise<T> {
    // no cache: every read loads (not even a load already under way is shared)
    if (this.ttlMs <= 0) return load();
    const at = this.now();
    const cached = this.entries.get(tenantId);
    if (cached && cached.until > at) {
      if (at >= cached.refreshAt && !this.loading.has(tenantId)) this.load(tenantId, load).catch(() => undefined);
      return cached.value;
    }
    return this.loading.get(tenantId) ?? this.load(tenantId, load);
  }

  delete(tenantId: string): void {
    this.entries.delete(tenantId);
    this.loading.delete(tenantId);
    this.generations.set(tenantId, (this.generations.get(tenantId) ?? 0) + 1);
  }

  private load(tenantId: string, load: () => Promise<T>): Promise<T> {
    const began = this.now();
    const generation = this.generations.get(tenantId) ?? 0;
    const loaded = load().then(
      (value) => {
        if ((this.generations.get(tenantId) ?? 0) === generation) {
          if (this.entries.size > 10_000) this.entries.clear();
          this.entries.set(tenantId, { value, until: began + this.ttlMs, refreshAt: began + this.ttlMs / 2 });
        }
        if (this.loading.get(tenantId) === loaded) this.loading.delete(tenantId);
        return value;
      },
      (error: unknown) => {
        if (this.loading.get(tenantId) === loaded) this.loading.delete(tenantId);
        throw error;
      },
    );
    this.loading.set(tenantId, loaded);
    return loaded;
  }
}
