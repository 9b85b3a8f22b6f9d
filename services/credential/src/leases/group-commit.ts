export interface GroupCommitOptions<I, O> {
  /** Commits a group in one transaction and answers one result per unit, in order; throws to commit nothing. */
  commit: (units: I[]) => Promise<O[]>;
  /**
   * Units with the same key never share a group nor run in two groups at once (e.g. two
   * redemptions of one multi-use lease): the second waits for the next group, so groups
   * never wait on each other's row locks.
   */
  keyOf?: (unit: I) => string;
  /** Groups that may commit at once (each on its own pooled connection). */
  lanes?: number;
  maxBatch?: number;
}

interface Pending<I, O> {
  unit: I;
  key: string | undefined;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: units of work that arrive while groups are committing share the next
 * commit, so many small writes (lease grants, redemptions with their read record) pay
 * for one commit between them. A caller's promise settles only after the commit that
 * holds its unit, so nothing is reported done (no value released) before it is durable.
 * When a group fails, each of its units is committed again on its own, so one failing
 * unit fails alone and the others still go through. The vault also groups the reads of
 * the lease path this way (one query per group of lookups).
 */
export class GroupCommit<I, O> {
  private readonly queue: Array<Pending<I, O>> = [];
  private readonly inFlight = new Set<string>();
  private running = 0;
  private readonly lanes: number;
  private readonly maxBatch: number;

  constructor(private readonly options: GroupCommitOptions<I, O>) {
    this.lanes = options.lanes ?? 2;
    this.maxBatch = options.maxBatch ?? 128;
  }

  run(unit: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ unit, key: this.options.keyOf?.(unit), resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.lanes) {
      const group = this.take();
      if (group.length === 0) return;
      this.running++;
      void this.commitGroup(group).finally(() => {
        for (const p of group) if (p.key !== undefined) this.inFlight.delete(p.key);
        this.running--;
        this.pump();
      });
    }
  }

  /** The next group: queued units in arrival order, skipping keys already taken. */
  private take(): Array<Pending<I, O>> {
    const group: Array<Pending<I, O>> = [];
    for (let i = 0; i < this.queue.length && group.length < this.maxBatch; ) {
      const p = this.queue[i];
      if (p.key !== undefined && this.inFlight.has(p.key)) {
        i++;
        continue;
      }
      if (p.key !== undefined) this.inFlight.add(p.key);
      group.push(p);
      this.queue.splice(i, 1);
    }
    return group;
  }

  private async commitGroup(group: Array<Pending<I, O>>): Promise<void> {
    let results: O[];
    try {
      results = await this.options.commit(group.map((p) => p.unit));
    } catch (error) {
      if (group.length === 1) group[0].reject(error);
      else await this.commitOneByOne(group);
      return;
    }
    if (results.length !== group.length) {
      const error = new Error(`group commit answered ${results.length} results for ${group.length} units`);
      for (const p of group) p.reject(error);
      return;
    }
    group.forEach((p, i) => p.resolve(results[i]));
  }

  /** After a failed group (which committed nothing): each unit alone, so a bad one fails alone. */
  private async commitOneByOne(group: Array<Pending<I, O>>): Promise<void> {
    for (const p of group) {
      try {
        const [result] = await this.options.commit([p.unit]);
        p.resolve(result);
      } catch (error) {
        p.reject(error);
      }
    }
  }
}
