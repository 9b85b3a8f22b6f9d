/**
 * Group commit for the ledger: what arrives while a lane's batch is in flight waits and
 * goes in its next batch (one transaction for many requests). A request id always takes
 * the same lane (`laneOf`), so two operations on one hold never run at once in this
 * process; lanes commit in parallel and meet only on row locks, taken in one order.
 */
export class Batcher<T, R> {
  private readonly queues: Array<Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }>>;
  private readonly busy: boolean[];

  constructor(
    private readonly options: {
      lanes: number;
      maxBatch: number;
      laneOf: (item: T) => number;
      /** One result (or Error) per item, in order. */
      run: (items: T[]) => Promise<Array<R | Error>>;
    },
  ) {
    this.queues = Array.from({ length: options.lanes }, () => []);
    this.busy = Array.from({ length: options.lanes }, () => false);
  }

  submit(item: T): Promise<R> {
    const lane = Math.abs(this.options.laneOf(item)) % this.options.lanes;
    return new Promise<R>((resolve, reject) => {
      this.queues[lane].push({ item, resolve, reject });
      if (!this.busy[lane]) void this.drain(lane);
    });
  }

  private async drain(lane: number): Promise<void> {
    this.busy[lane] = true;
    const queue = this.queues[lane];
    while (queue.length > 0) {
      // Let the callers the previous batch answered submit their next operation first
      // (their continuations run before this macrotask): it joins this batch, not the next.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const batch = queue.splice(0, this.options.maxBatch);
      try {
        const results = await this.options.run(batch.map((b) => b.item));
        batch.forEach((b, i) => (results[i] instanceof Error ? b.reject(results[i]) : b.resolve(results[i] as R)));
      } catch (error) {
        for (const b of batch) b.reject(error);
      }
    }
    this.busy[lane] = false;
  }
}

/** A stable small hash of a string (FNV-1a), for lanes. */
export function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
