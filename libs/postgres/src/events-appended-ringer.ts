import { EVENTS_APPENDED_CHANNEL } from './event-store.migration';

/**
 * The shortest time between two rings (what committed meanwhile is rung at its end): it
 * trades the relay's latency for rings. The outbox benchmark at load 2.6-3.6 (4 writers of
 * 25 events): relay p50 7.4-8.1 ms notifying in the transaction, 10.4-12.8 with this gap,
 * 8.1-9.6 with 1 ms, PostgreSQL 27-30, 21.5-24.3 and 22.2-23.7 µs CPU an event. 5 ms is what
 * the credential service's lease statements were measured with (one ring a statement at a
 * light load was 1.2 round trips more a lease).
 */
export const RING_GAP_MS = 5;

/** What a ring needs of a pg pool. */
export interface RingPool {
  query(text: string, values: unknown[]): Promise<unknown>;
}

/**
 * Wakes the outbox relay and the event tails after appends that did not NOTIFY inside their
 * transaction (`NOTIFY_AFTER_COMMIT_SETTING`), so that their commits never wait for the
 * cluster's notifying commits. Its NOTIFY is a transaction of its own, asynchronous commit,
 * off the appender's path; coalesced: one at a time and at most one per gap, then one more
 * when appends committed meanwhile. A lost ring costs only latency: the relay and the tails
 * also poll. Ring only after the append committed, or a listener may read before it is visible.
 */
export class EventsAppendedRinger {
  private ringing = false;
  private again = false;
  constructor(
    private readonly pool: RingPool,
    private readonly gap: () => Promise<void> = () => new Promise((resolve) => setTimeout(resolve, this.gapMs).unref()),
    /** The shortest time between two rings (ms): RING_GAP_MS, or what the pool's writers chose (eventsAppendedRinger). */
    readonly gapMs: number = RING_GAP_MS,
  ) {}

  ring(): void {
    if (this.ringing) {
      this.again = true;
      return;
    }
    this.ringing = true;
    // Never throws into the committed append's caller (not even a pool that is closing).
    Promise.resolve()
      .then(() => this.pool.query(`SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`, [EVENTS_APPENDED_CHANNEL]))
      .catch(() => undefined)
      .then(() => this.gap())
      .catch(() => undefined)
      .finally(() => {
        this.ringing = false;
        if (!this.again) return;
        this.again = false;
        this.ring();
      });
  }
}

const ringers = new WeakMap<RingPool, EventsAppendedRinger>();

/**
 * The one ringer of a pool: every writer on it shares its coalescing. `gapMs` sets the pool's
 * gap between rings: a service whose every request commits (llm-router) trades a few ms of the
 * relay's latency for fewer rings and relay cycles, each a round trip or more of its own.
 */
export function eventsAppendedRinger(pool: RingPool, options: { gapMs?: number } = {}): EventsAppendedRinger {
  let ringer = ringers.get(pool);
  if (!ringer) ringers.set(pool, (ringer = new EventsAppendedRinger(pool, undefined, options.gapMs)));
  // one gap per pool, chosen before its first ring: a later writer may not change it under the others
  else if (options.gapMs !== undefined && options.gapMs !== ringer.gapMs) throw new Error(`this pool's ringer already rings with a gap of ${ringer.gapMs} ms (asked: ${options.gapMs}): choose the gap before the first append`);
  return ringer;
}
