import { nextCpuCheckMs } from './cpu-budget';

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
