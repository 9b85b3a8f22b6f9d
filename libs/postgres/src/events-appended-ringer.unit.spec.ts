import { EVENTS_APPENDED_CHANNEL } from './event-store.migration';
import { EventsAppendedRinger, eventsAppendedRinger, RING_GAP_MS, type RingPool } from './events-appended-ringer';

/** A pool whose rings, and the gaps after them, end when the test says. */
function fakes() {
  const rings: Array<{ values: unknown[]; end: (error?: Error) => void }> = [];
  const gaps: Array<() => void> = [];
  const pool: RingPool = {
    query: (_text, values) => new Promise((resolve, reject) => void rings.push({ values, end: (error) => (error ? reject(error) : resolve(undefined)) })),
  };
  const gap = () => new Promise<void>((resolve) => void gaps.push(resolve));
  return { rings, gaps, pool, gap };
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('EventsAppendedRinger', () => {
  it('rings once for the commits that ask while a ring is under way, then once more for all of them', async () => {
    const { rings, gaps, pool, gap } = fakes();
    const ringer = new EventsAppendedRinger(pool, gap);
    ringer.ring();
    ringer.ring();
    ringer.ring();
    await settle();
    expect(rings).toHaveLength(1);
    expect(rings[0].values).toEqual([EVENTS_APPENDED_CHANNEL]);
    ringer.ring();
    rings[0].end();
    await settle();
    // the gap after a ring: what asks meanwhile waits for its end
    expect(gaps).toHaveLength(1);
    ringer.ring();
    await settle();
    expect(rings).toHaveLength(1);
    gaps[0]();
    await settle();
    expect(rings).toHaveLength(2);
    rings[1].end();
    await settle();
    gaps[1]();
    await settle();
    // nobody asked during the second ring: no third
    expect(rings).toHaveLength(2);
    ringer.ring();
    await settle();
    expect(rings).toHaveLength(3);
  });

  it('survives a failed ring (the relay also polls) and rings again for the next commit', async () => {
    const { rings, gaps, pool, gap } = fakes();
    const ringer = new EventsAppendedRinger(pool, gap);
    ringer.ring();
    await settle();
    rings[0].end(new Error('pool is closing'));
    await settle();
    gaps[0]();
    await settle();
    ringer.ring();
    await settle();
    expect(rings).toHaveLength(2);
  });

  it('is one per pool, so that every writer on a pool shares its coalescing', () => {
    const a = fakes().pool;
    const b = fakes().pool;
    expect(eventsAppendedRinger(a)).toBe(eventsAppendedRinger(a));
    expect(eventsAppendedRinger(a)).not.toBe(eventsAppendedRinger(b));
  });

  it("waits the pool's gap between rings: RING_GAP_MS unless a writer of the pool chose another", async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate'] });
    try {
      const { rings, pool } = fakes();
      const ringer = eventsAppendedRinger(pool, { gapMs: 25 });
      expect(eventsAppendedRinger(pool)).toBe(ringer);
      expect(ringer.gapMs).toBe(25);
      expect(eventsAppendedRinger(fakes().pool).gapMs).toBe(RING_GAP_MS);
      // the same gap again is fine; another one, once the pool's ringer exists, is refused
      expect(eventsAppendedRinger(pool, { gapMs: 25 })).toBe(ringer);
      expect(() => eventsAppendedRinger(pool, { gapMs: 5 })).toThrow(/already rings with a gap of 25 ms/);
      expect(eventsAppendedRinger(pool).gapMs).toBe(25);
      ringer.ring();
      await settle();
      rings[0].end();
      await settle();
      ringer.ring();
      jest.advanceTimersByTime(24);
      await settle();
      expect(rings).toHaveLength(1);
      jest.advanceTimersByTime(1);
      await settle();
      expect(rings).toHaveLength(2);
    } finally {
      jest.useRealTimers();
    }
  });
});
