/**
 * A per-instance, per-tenant cache of what the request path reads on every call (the
 * catalog, the guard policy): an entry is served for `ttlMs`, then read again; another
 * instance's change shows within that time, this instance's own is dropped at once
 * (`delete`). Past 10,000 tenants the whole cache is dropped.
 */
export class TenantCache<T> {
  private readonly entries = new Map<string, { value: T; until: number }>();

  constructor(private readonly ttlMs: number) {}

  async get(tenantId: string, load: () => Promise<T>): Promise<T> {
    const at = Date.now();
    const cached = this.entries.get(tenantId);
    if (cached && cached.until > at) return cached.value;
    const value = await load();
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(tenantId, { value, until: at + this.ttlMs });
    return value;
  }

  delete(tenantId: string): void {
    this.entries.delete(tenantId);
  }
}
