import { readdirSync, readFileSync } from 'node:fs';

/** Latency summary of a sample, in milliseconds. */
export function percentile(sortedMs: readonly number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[index];
}

export function summarize(samplesMs: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] };
}

export const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** User + system CPU a process has used so far (ms), from /proc (Linux; USER_HZ is 100 on every common architecture). */
export function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  return ownCpuMs(statOf(`/proc/${pid}/stat`).fields);
}

/**
 * A /proc `stat` file (a process's, or a thread's under task/): its command name and the
 * fields after it (the name may hold spaces and parentheses). utime, stime, cutime and
 * cstime are the 12th to the 15th field.
 */
function statOf(path: string): { name: string; fields: string[] } {
  const stat = readFileSync(path, 'utf8');
  const end = stat.lastIndexOf(')');
  return { name: stat.slice(stat.indexOf('(') + 1, end), fields: stat.slice(end + 2).split(' ') };
}

/** utime + stime in ms (USER_HZ 100). */
const ownCpuMs = (fields: readonly string[]) => (Number(fields[11]) + Number(fields[12])) * 10;

/** A process and its descendants, parent first (Linux: /proc/<pid>/task/<pid>/children, the children its main thread forked). */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    let children = '';
    try {
      children = readFileSync(`/proc/${tree[i]}/task/${tree[i]}/children`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    for (const child of children.trim().split(/\s+/)) if (child) tree.push(Number(child));
  }
  return tree;
}

/**
 * User + system CPU (ms) of a process tree (a cluster's primary and its workers): each
 * live process's own, plus what its children that already exited and were reaped used
 * (cutime, cstime), so a worker that died and was replaced still counts.
 */
export function treeCpuMsOf(pid: number): number {
  let ms = 0;
  for (const p of processTree(pid)) {
    try {
      const { fields } = statOf(`/proc/${p}/stat`);
      ms += ownCpuMs(fields) + (Number(fields[13]) + Number(fields[14])) * 10;
    } catch {
      // exited between the listing and the read: its CPU shows in its parent's cutime once reaped
    }
  }
  return ms;
}

/** Resident set size of a process tree in MB (Linux: VmRSS of each; pages the processes share count once per process). */
export function treeRssMb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kb / 1024;
}

/** CPU the whole machine has spent so far, every core (ms; /proc/stat: user, nice, system, irq, softirq, steal; not idle nor iowait). */
export function machineCpuMs(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  return (user + nice + system + irq + softirq + steal) * 10;
}

/**
 * A JVM's CPU so far (ms) and the part of it its JIT compiler threads ("C1 CompilerThre",
 * "C2 CompilerThre") and its garbage collector ("GC Thread#n", "G1 …") used: the rest is
 * the application's own threads. Threads that already exited count in `all` only (the JVM
 * stops idle compiler threads), so `jit` and `gc` are lower bounds.
 */
export function jvmCpuMsOf(pid: number): { all: number; jit: number; gc: number } {
  let jit = 0;
  let gc = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let thread: ReturnType<typeof statOf>;
    try {
      thread = statOf(`/proc/${pid}/task/${task}/stat`);
    } catch {
      continue; // exited meanwhile
    }
    const { name } = thread;
    const ms = ownCpuMs(thread.fields);
    if (/^C[12] CompilerThre/.test(name)) jit += ms;
    else if (/^(GC Thread|G1 )/.test(name)) gc += ms;
  }
  return { all: cpuMsOf(pid), jit, gc };
}

/**
 * User + system CPU (ms) of every process whose command name (/proc/<pid>/comm) is `comm`
 * (all of PostgreSQL's backends and helpers, say): what a shared server spent, to be read
 * on a quiet machine. Processes that exited meanwhile are missed.
 */
export function cpuMsOfCommand(comm: string): number {
  let ms = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
      ms += cpuMsOf(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return ms;
}

/** CPU (ms) used so far by the whole machine and by the shared servers on it (every PostgreSQL and nats-server process): a mark to take differences of over a phase. */
export function serversCpuMs(): { machine: number; postgres: number; nats: number } {
  return { machine: machineCpuMs(), postgres: cpuMsOfCommand('postgres'), nats: cpuMsOfCommand('nats-server') };
}
