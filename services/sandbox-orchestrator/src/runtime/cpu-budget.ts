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

/** How often a bound that can be lowered while the execution runs (`limitNow`) is asked again, at least. */
export const CPU_LIMIT_RECHECK_MS = 1000;

export interface CpuWatch {
  /** The execution's CPU-seconds so far (its cgroup). */
  readUsed: () => Promise<number>;
  /** Its bound at the start. */
  limit: number;
  /** Its bound now (a tenant's quota lowered meanwhile); asked at each look, which then comes at least every `recheckMs`. A failure keeps the last bound. */
  limitNow?: () => Promise<number>;
  cpuMillis: number;
  recheckMs?: number;
  onExceeded: () => void;
}

/**
 * Looks at an execution's CPU time when it could first have used what it has left (and
 * every `recheckMs` when its bound can move), and calls `onExceeded` once it reached its
 * bound. Returns the stop.
 */
export function watchCpu(w: CpuWatch): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let limit = w.limit;
  const schedule = (left: number) => {
    const ms = nextCpuCheckMs(left, w.cpuMillis);
    timer = setTimeout(() => void check(), w.limitNow ? Math.min(ms, w.recheckMs ?? CPU_LIMIT_RECHECK_MS) : ms);
  };
  const check = async () => {
    const [used, now] = await Promise.all([w.readUsed(), w.limitNow?.().catch(() => limit)]);
    if (stopped) return;
    if (now !== undefined) limit = now;
    if (used >= limit) return w.onExceeded();
    schedule(limit - used);
  };
  schedule(limit);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
