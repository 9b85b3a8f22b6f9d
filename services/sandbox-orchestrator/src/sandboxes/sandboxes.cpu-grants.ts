/**
 * The CPU-seconds granted to the executions running on this instance, per tenant (pure:
 * no I/O, no clock). The tenant's used CPU-seconds move only when an execution's end is
 * committed, so an admission subtracts what the running ones may still spend (their
 * grants) and what ended since its read of `used` began (`open` before that read): the
 * grants of one tenant on one instance never pass its remainder together.
 */
export class CpuGrants {
  private counter = 0;
  /** Reads of `used` in flight: their mark. */
  private readonly reads = new Set<number>();
  private readonly grants = new Map<string, { tenantId: string; limit: number; quota: number }>();
  /** Ends since the oldest read in flight began (that read may not have seen them). */
  private ended: Array<{ at: number; tenantId: string; cpuSeconds: number }> = [];

  /** Before reading the tenant's used CPU-seconds; `close` it after `admit` (or a failure). */
  open(): number {
    const mark = ++this.counter;
    this.reads.add(mark);
    return mark;
  }

  close(mark: number): void {
    this.reads.delete(mark);
    const oldest = Math.min(...this.reads);
    this.ended = this.ended.filter((e) => e.at > oldest);
  }

  /**
   * What the execution may spend: the tenant's `quota` less `used` (read after `mark`), what
   * its running executions here were granted and what ended since `mark`; at most `want` (its
   * own worst case). Nothing left: what is left (≤ 0) and what is held, and nothing granted.
   */
  admit(mark: number, tenantId: string, executionId: string, quota: number, used: number, want: number): { limit: number } | { left: number; held: number } {
    const held = this.heldBy(tenantId) + this.ended.filter((e) => e.at > mark && e.tenantId === tenantId).reduce((sum, e) => sum + e.cpuSeconds, 0);
    const left = quota - used - held;
    if (left <= 0) return { left, held };
    const limit = Math.min(left, want);
    this.grants.set(executionId, { tenantId, limit, quota });
    return { limit };
  }

  /** The execution's bound under the tenant's quota now: its grant less what the quota was lowered by since (never more than granted). */
  limitNow(executionId: string, quotaNow: number): number | undefined {
    const grant = this.grants.get(executionId);
    return grant && grant.limit - Math.max(0, grant.quota - quotaNow);
  }

  /** The execution ended (its usage committed, or nothing ran): its grant is released. */
  end(executionId: string, cpuSeconds: number): void {
    const grant = this.grants.get(executionId);
    if (!grant) return;
    this.grants.delete(executionId);
    if (this.reads.size > 0) this.ended.push({ at: ++this.counter, tenantId: grant.tenantId, cpuSeconds });
  }

  private heldBy(tenantId: string): number {
    let sum = 0;
    for (const g of this.grants.values()) if (g.tenantId === tenantId) sum += g.limit;
    return sum;
  }
}
