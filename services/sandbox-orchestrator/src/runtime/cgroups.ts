import type { SandboxLimits } from './runtime.port';

/** One cgroup v1 file to write, under `<cgroupRoot>/<controller>/<path>/`. */
export interface CgroupSetting {
  controller: 'cpu' | 'memory' | 'pids';
  file: string;
  value: string;
}

/** The v1 controllers an execution's cgroup exists in (cpuacct for the metering). */
export const CGROUP_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids'] as const;
export type CgroupController = (typeof CGROUP_CONTROLLERS)[number];

const CPU_PERIOD_US = 100_000;
const MB = 1024 * 1024;

/**
 * The limits of one execution's cgroup (pure). The orchestrator creates that cgroup and
 * writes these itself; crun puts the container in a child of it (`…/<exec>/c`) and
 * removes the child when the container ends, so the counters (cpuacct.usage,
 * memory.max_usage_in_bytes, the oom_kill count) are still there to read. Memory and
 * memory+swap are the same: no swap, a bomb meets the OOM killer inside the cgroup.
 */
export function cgroupSettings(limits: Pick<SandboxLimits, 'cpuMillis' | 'memoryMb' | 'pids'>): CgroupSetting[] {
  const bytes = String(limits.memoryMb * MB);
  return [
    { controller: 'cpu', file: 'cpu.cfs_period_us', value: String(CPU_PERIOD_US) },
    { controller: 'cpu', file: 'cpu.cfs_quota_us', value: String(Math.max(1000, Math.round((limits.cpuMillis / 1000) * CPU_PERIOD_US))) },
    { controller: 'memory', file: 'memory.limit_in_bytes', value: bytes },
    { controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: bytes },
    { controller: 'memory', file: 'memory.swappiness', value: '0' },
    { controller: 'pids', file: 'pids.max', value: String(limits.pids) },
  ];
}

/** `oom_kill N` of memory.oom_control (kernel ≥ 4.13); 0 when absent. */
export function oomKills(oomControl: string): number {
  const m = /^oom_kill (\d+)$/m.exec(oomControl);
  return m ? Number(m[1]) : 0;
}
