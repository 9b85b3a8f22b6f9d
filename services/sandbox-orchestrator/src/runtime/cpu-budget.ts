/**
 * When to look at an execution's CPU time next (pure): the earliest it could have used
 * the CPU-seconds it has left, since its cgroup's CPU quota lets it use at most
 * `cpuMillis / 1000` CPU-seconds per wall-clock second; never sooner than `floorMs`. A
 * program that cannot have reached its bound is not looked at, however long it runs.
 */
export function nextCpuCheckMs(leftCpuSeconds: number, cpuMillis: number, floorMs = 20): number {
  const perWallSecond = Math.max(cpuMillis, 1) / 1000;
  return Math.max(floorMs, Math.ceil((Math.max(leftCpuSeconds, 0) / perWallSecond) * 1000));
}
