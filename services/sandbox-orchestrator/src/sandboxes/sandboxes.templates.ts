import type { SandboxLimits } from '../runtime/runtime.port';

/** Sandbox templates: the limits a sandbox is created with (image and network rules come with the egress proxy). */
export const SANDBOX_TEMPLATES: Readonly<Record<string, SandboxLimits>> = {
  small: { cpuMillis: 500, memoryMb: 256, pids: 64, workspaceMb: 64, timeoutMs: 30_000 },
  default: { cpuMillis: 1000, memoryMb: 512, pids: 128, workspaceMb: 256, timeoutMs: 60_000 },
  large: { cpuMillis: 2000, memoryMb: 2048, pids: 256, workspaceMb: 1024, timeoutMs: 300_000 },
};
export const TEMPLATE_NAMES = Object.keys(SANDBOX_TEMPLATES) as [string, ...string[]];
