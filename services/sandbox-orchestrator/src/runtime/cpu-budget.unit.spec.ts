import { nextCpuCheckMs, watchCpu } from './cpu-budget';

describe('nextCpuCheckMs', () => {
  it('waits as long as the CPU quota needs to use what is left: 2 CPU-seconds at half a core is 4 s, at two cores 1 s', () => {
    expect(nextCpuCheckMs(2, 500)).toBe(4000);
    expect(nextCpuCheckMs(2, 2000)).toBe(1000);
    expect(nextCpuCheckMs(0.25, 1000)).toBe(250);
  });

  it('looks again soon, not at once, when (almost) nothing is left, and never divides by a zero quota', () => {
    expect(nextCpuCheckMs(0, 1000)).toBe(20);
    expect(nextCpuCheckMs(-1, 1000)).toBe(20);
    expect(nextCpuCheckMs(0.001, 1000, 50)).toBe(50);
    expect(nextCpuCheckMs(1, 0)).toBe(1_000_000);
  });
});

describe('watchCpu', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('with a bound that can move, asks it again at least every recheck and stops the execution once the lowered bound is reached', async () => {
    let used = 1;
    let bound = 100;
    let exceeded = 0;
    const stop = watchCpu({ readUsed: async () => used, limit: 100, limitNow: async () => bound, cpuMillis: 1000, recheckMs: 1000, onExceeded: () => void exceeded++ });
    await jest.advanceTimersByTimeAsync(3000);
    expect(exceeded).toBe(0); // a fixed bound of 100 at one core would not be looked at for 100 s
    bound = 2;
    used = 2.5;
    await jest.advanceTimersByTimeAsync(1000);
    expect(exceeded).toBe(1);
    stop();
  });

  it('keeps the last bound when asking it fails, and a fixed bound is looked at only when it could be reached', async () => {
    let exceeded = 0;
    let reads = 0;
    const stop = watchCpu({ readUsed: async () => (reads++, 0.5), limit: 1, limitNow: async () => Promise.reject(new Error('quotas unavailable')), cpuMillis: 1000, recheckMs: 1000, onExceeded: () => void exceeded++ });
    await jest.advanceTimersByTimeAsync(2500);
    expect(exceeded).toBe(0);
    stop();
    const fixed = watchCpu({ readUsed: async () => (reads++, 0), limit: 10, cpuMillis: 1000, onExceeded: () => void exceeded++ });
    reads = 0;
    await jest.advanceTimersByTimeAsync(9000);
    expect(reads).toBe(0);
    fixed();
  });
});
