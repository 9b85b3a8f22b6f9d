import { NetnsPool } from './netns-pool';

/** A pool of numbered entries, recording what was made and destroyed. */
function harness(size: number, options: { fail?: () => boolean; now?: () => number; maxAgeMs?: number } = {}) {
  let next = 0;
  const made: number[] = [];
  const destroyed: number[] = [];
  const errors: string[] = [];
  const pool = new NetnsPool<number>({
    size,
    prepare: async () => {
      if (options.fail?.()) throw new Error('ip: failed');
      const entry = next++;
      made.push(entry);
      return entry;
    },
    destroy: async (entry) => void destroyed.push(entry),
    onError: (error) => errors.push(error.message),
    refillDelayMs: 0,
    retryMs: 10,
    now: options.now,
    maxAgeMs: options.maxAgeMs,
  });
  return { pool, made, destroyed, errors };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('NetnsPool', () => {
  it('fills to its size and hands each entry out once, refilling behind', async () => {
    const { pool, made } = harness(3);
    await pool.warm();
    expect(made).toEqual([0, 1, 2]);
    expect(pool.available).toBe(3);
    const taken = [pool.take(), pool.take()];
    expect(taken).toEqual([0, 1]);
    await settle();
    await pool.warm();
    expect(pool.available).toBe(3);
    const more = [pool.take(), pool.take(), pool.take()];
    expect(new Set([...taken, ...more]).size).toBe(5); // never the same entry twice
  });

  it('size 0: nothing is prepared, take gives nothing (the caller prepares its own)', async () => {
    const { pool, made } = harness(0);
    await pool.warm();
    expect(pool.take()).toBeUndefined();
    await settle();
    expect(made).toEqual([]);
  });

  it('drain destroys the waiting entries and one prepared meanwhile, and stops refilling', async () => {
    const { pool, made, destroyed } = harness(2);
    await pool.warm();
    pool.take(); // 0 out; a refill is due
    await settle(); // 2 being prepared or ready
    await pool.drain();
    expect(pool.available).toBe(0);
    expect(destroyed.sort()).toEqual(made.filter((e) => e !== 0).sort());
    pool.take();
    await settle();
    expect(made).toHaveLength(3); // stopped: the take after the drain prepared nothing
  });

  it('a drain asked while one runs waits for it (a shutdown hook and a close hook both drain)', async () => {
    let release!: () => void;
    const destroyed: number[] = [];
    let next = 0;
    const pool = new NetnsPool<number>({ size: 2, prepare: async () => next++, destroy: (e) => new Promise<void>((r) => (release = () => (destroyed.push(e), r()))), refillDelayMs: 0 });
    await pool.warm();
    const first = pool.drain();
    let secondDone = false;
    const second = pool.drain().then(() => (secondDone = true));
    await settle();
    expect(secondDone).toBe(false); // still destroying
    release();
    await settle();
    release();
    await Promise.all([first, second]);
    expect(destroyed).toEqual([0, 1]);
  });

  it('a failed preparation is reported and retried later; take meanwhile gives nothing', async () => {
    let failing = true;
    const { pool, errors } = harness(1, { fail: () => failing });
    await pool.warm();
    expect(errors).toEqual(['ip: failed']);
    expect(pool.take()).toBeUndefined();
    failing = false;
    await new Promise((r) => setTimeout(r, 60)); // past the retry's back-off
    expect(pool.available).toBe(1);
    await pool.drain();
  });

  it('replaces an entry that waited past its age instead of handing it out', async () => {
    let now = 0;
    const { pool, destroyed } = harness(1, { now: () => now, maxAgeMs: 1000 });
    await pool.warm();
    now = 5000;
    expect(pool.take()).toBeUndefined();
    await settle();
    expect(destroyed).toEqual([0]);
    expect(pool.take()).toBe(1);
    await pool.drain();
  });
});
