import { PalisadeError } from '@palisade/contracts';
import type { AllotmentPort, AllotRequest, AllotResult, BillingPort, ReserveRequest, ReserveResult, SettleRequest } from './billing.port';

export interface SettleBatcherOptions {
  /** How long a settle request may wait for others to go out with it (ms). */
  lingerMs: number;
  /** A batch this large goes out at once. */
  maxBatch: number;
}

interface Queued {
  request: SettleRequest;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The billing port with settle requests sent in batches: those of the calls that ended
 * within `lingerMs` leave in one turn of the event loop, so the NATS client writes them as
 * one frame and their answers come back together, where each call cost the router a write
 * and a wake-up of its own (one at a time, most of a request's CPU is such wake-ups).
 * Settling is off the answer's path (the hold covers the call until billing has it, and the
 * usage event is the durable settlement), so only billing's view of the hold is later, by
 * at most `lingerMs`. Reservations and releases are never held back: budgets first.
 */
/** Settle requests sent together at most (a full batch leaves at once): a burst ahead of a reservation on the same connection stays short. */
export const SETTLE_BATCH_MAX = 128;

export class SettleBatcher implements AllotmentPort {
  private queue: Queued[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly billing: BillingPort & Partial<Pick<AllotmentPort, 'allot'>>,
    private readonly options: SettleBatcherOptions,
  ) {}

  reserve(request: ReserveRequest): Promise<ReserveResult> {
    return this.billing.reserve(request);
  }

  /** Allotments are reservations: never held back. */
  allot(request: AllotRequest): Promise<AllotResult> {
    if (!this.billing.allot) return Promise.reject(new PalisadeError('unavailable', 'billing: this port asks no allotments'));
    return this.billing.allot(request);
  }

  release(request: { tenantId: string; requestId: string }): Promise<void> {
    return this.billing.release(request);
  }

  /** Resolves or rejects with billing's own answer to this request, once its batch went out. */
  settle(request: SettleRequest): Promise<void> {
    if (this.closed) return this.billing.settle(request);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (this.queue.length >= this.options.maxBatch) this.send();
      else this.timer ??= setTimeout(() => this.send(), this.options.lingerMs);
    });
  }

  /** On shutdown: what is queued goes out now, later requests go out at once; resolves when every batch has its answers. */
  async close(): Promise<void> {
    this.closed = true;
    this.send();
    await Promise.all(this.sending);
  }

  private send(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    // every request of the batch is issued in this turn: the client flushes them together
    const sent = Promise.all(batch.map((q) => this.sendOne(q))).then(() => undefined);
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  /** One request, its caller told how it went; a port that throws at once (not a rejected promise) fails that one only, not the timer's turn nor the rest of the batch. */
  private sendOne(q: Queued): Promise<void> {
    try {
      return this.billing.settle(q.request).then(q.resolve, q.reject);
    } catch (error) {
      q.reject(error);
      return Promise.resolve();
    }
  }
}
