/** One decision of the proxy, as audited: never a secret value, never a body or a header value. */
export interface EgressDecision {
  at: string;
  outcome: 'allowed' | 'denied' | 'injected';
  /** `connect` (a tunnel or connection), `request` (one HTTP request) or `dns` (a lookup the sandbox's resolver refused). */
  stage: 'connect' | 'request' | 'dns';
  host: string;
  port: number;
  method?: string;
  /** Path without the query (a query may carry data). */
  path?: string;
  rule: string;
  reason?: string;
  /** With `injected`: which secret (its id). */
  secretId?: string;
}

export interface EgressBatch {
  sandboxId: string;
  decisions: EgressDecision[];
  /** Decisions past the batch bound, counted but not listed. */
  dropped: number;
}

/** Where the batches go (the event store, in the service). */
export type EgressAuditSink = (batch: EgressBatch) => Promise<void>;

/**
 * Batches a sandbox's decisions: one batch per sandbox per interval (default 1 s), at most
 * `maxPerBatch` decisions listed (the rest counted), so a chatty program does not flood
 * the audit chain. `flush()` writes what is pending (at close).
 */
export class EgressAuditBatcher {
  private readonly pending = new Map<string, EgressBatch>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: EgressAuditSink,
    private readonly options: { intervalMs?: number; maxPerBatch?: number; onError?: (error: unknown) => void } = {},
  ) {}

  record(sandboxId: string, decision: EgressDecision): void {
    let batch = this.pending.get(sandboxId);
    if (!batch) {
      batch = { sandboxId, decisions: [], dropped: 0 };
      this.pending.set(sandboxId, batch);
    }
    if (batch.decisions.length < (this.options.maxPerBatch ?? 200)) batch.decisions.push(decision);
    else batch.dropped++;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.intervalMs ?? 1000);
  }

  async flush(sandboxId?: string): Promise<void> {
    const batches = sandboxId ? [this.pending.get(sandboxId)].filter((b): b is EgressBatch => !!b) : [...this.pending.values()];
    for (const batch of batches) {
      this.pending.delete(batch.sandboxId);
      try {
        await this.sink(batch);
      } catch (error) {
        this.options.onError?.(error);
      }
    }
  }

  close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.flush();
  }
}
