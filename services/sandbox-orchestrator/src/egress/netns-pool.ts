export interface NetnsPoolOptions<T> {
  /** Entries kept ready (0: no pool, every claim prepares its own). */
  size: number;
  /** Makes one entry (a sandbox network with its listeners bound, not yet serving anyone). */
  prepare: () => Promise<T>;
  /** Tears an entry down (an entry never served anyone: nothing to flush). */
  destroy: (entry: T) => Promise<void>;
  /** A preparation or a teardown that failed (the pool retries later). */
  onError?: (error: Error) => void;
  /** An entry waiting longer than this is replaced rather than handed out (its CA's validity counts from its preparation). */
  maxAgeMs?: number;
  /**
   * After a take, the wait before refilling starts (default 50 ms): the claiming sandbox's
   * start (its files, its event) goes first, rather than sharing the event loop and the
   * cores with the preparation of its successor.
   */
  refillDelayMs?: number;
  /** After a failed preparation, the wait before the next; doubled per failure up to 30 s. */
  retryMs?: number;
  now?: () => number;
}

const MAX_RETRY_MS = 30_000;

/**
 * A pool of prepared sandbox networks: each entry is made ahead, handed to exactly one
 * sandbox by `take` and never comes back (the sandbox's close destroys it). It refills in
 * the background, one entry at a time (the host has few cores; a burst of `ip` and `nft`
 * processes would slow the creations it is meant to speed up). Nothing in an entry
 * belongs to a sandbox before it is taken: the sandbox, its rules and audit are attached
 * at claim time, so entries are interchangeable and never reused across sandboxes or
 * tenants.
 */
export class NetnsPool<T> {
  private readonly ready: Array<{ entry: T; at: number }> = [];
  private filling: Promise<void> | undefined;
  private running = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private deferred: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly o: NetnsPoolOptions<T>) {
    this.now = o.now ?? Date.now;
  }

  /** Entries ready now. */
  get available(): number {
    return this.ready.length;
  }

  /** A ready entry (the oldest still young enough), or undefined when none is; refills behind it. */
  take(): T | undefined {
    const maxAge = this.o.maxAgeMs ?? 3_600_000;
    let picked: T | undefined;
    while (picked === undefined && this.ready.length > 0) {
      const { entry, at } = this.ready.shift()!;
      if (this.now() - at <= maxAge) picked = entry;
      else void this.discard(entry);
    }
    if (this.running && !this.deferred) {
      this.deferred = setTimeout(() => {
        this.deferred = undefined;
        void this.refill();
      }, this.o.refillDelayMs ?? 50);
      this.deferred.unref();
    }
    return picked;
  }

  /** Starts keeping the pool full; resolves once it is (or a preparation failed: retried later). */
  warm(): Promise<void> {
    this.start();
    return this.refill();
  }

  /** Keeps the pool full from the next take on (a stopped pool is not refilled). */
  start(): void {
    this.running = this.o.size > 0;
  }

  /** Stops refilling, waits for a preparation under way and destroys every waiting entry; a caller during a drain waits for that drain. */
  drain(): Promise<void> {
    this.draining ??= this.empty().finally(() => (this.draining = undefined));
    return this.draining;
  }

  private async empty(): Promise<void> {
    this.running = false;
    for (const timer of [this.retry, this.deferred]) if (timer) clearTimeout(timer);
    this.retry = undefined;
    this.deferred = undefined;
    await this.filling;
    for (const { entry } of this.ready.splice(0)) await this.discard(entry);
  }

  private refill(): Promise<void> {
    if (!this.running || this.retry || this.ready.length >= this.o.size) return this.filling ?? Promise.resolve();
    this.filling ??= this.fill().finally(() => (this.filling = undefined));
    return this.filling;
  }

  private async fill(): Promise<void> {
    while (this.running && this.ready.length < this.o.size) {
      let entry: T;
      try {
        entry = await this.o.prepare();
        this.failures = 0;
      } catch (error) {
        this.failures++;
        this.o.onError?.(error as Error);
        const wait = Math.min(MAX_RETRY_MS, (this.o.retryMs ?? 1000) * 2 ** (this.failures - 1));
        this.retry = setTimeout(() => {
          this.retry = undefined;
          void this.refill();
        }, wait);
        this.retry.unref();
        return;
      }
      if (!this.running) return this.discard(entry);
      this.ready.push({ entry, at: this.now() });
    }
  }

  private async discard(entry: T): Promise<void> {
    await this.o.destroy(entry).catch((error: unknown) => this.o.onError?.(error as Error));
  }
}
