/**
 * The isolation runtime, as the orchestrator sees it: a port, so that the local crun
 * adapter (`crun.runtime.ts`) can be joined by a Kubernetes one (agent-sandbox CRDs,
 * gVisor) without touching the lifecycle.
 *
 * A sandbox is a prepared place (its bundle, its capped workspace); every execution runs
 * in a fresh container of that sandbox (own pid namespace and cgroup, same workspace), so
 * a timeout or an OOM kills exactly that execution's processes and its usage is measured
 * from its own cgroup.
 */

/** Limits of a sandbox, applied to each execution (cgroups) and its workspace (tmpfs size). */
export interface SandboxLimits {
  /** CPU quota in milli-CPUs (1000 = one core). */
  cpuMillis: number;
  memoryMb: number;
  pids: number;
  workspaceMb: number;
  /** Hard wall-clock limit of one execution. */
  timeoutMs: number;
}

/** `quota`: killed once it used the CPU-seconds it was given (`cpuSecondsLimit`: what its tenant had left). */
export type ExecReason = 'exited' | 'timeout' | 'oom' | 'killed' | 'quota';

export interface ExecRequest {
  /** argv, run as the sandbox user in /workspace. */
  argv: readonly string[];
  /** Written to the program's stdin, then closed. */
  stdin?: string | Buffer;
  /** Environment besides PATH/HOME/LANG; never secrets (the caller's values, validated by name). */
  env?: Readonly<Record<string, string>>;
  timeoutMs: number;
  /** CPU-seconds the execution may use (its tenant's left in the quota's window); past them it is killed, reason `quota`. Absent: no bound but the timeout. */
  cpuSecondsLimit?: number;
  /** The bound now, when it can be lowered while the execution runs (its tenant's quota lowered): asked again at least every second; at or past it, killed (`quota`). */
  cpuSecondsLimitNow?: () => Promise<number>;
  /** Bytes kept of each of stdout and stderr; beyond, the rest is counted and dropped. */
  outputCapBytes: number;
  /**
   * The program runs only once this resolves: what must precede any of it (billing's hold,
   * the `exec_started` event) goes on meanwhile, and the runtime prepares (the command and
   * stdin handed to a warm container, a cold one's cgroup and configuration). Rejected:
   * nothing runs, the result rejects with its error.
   */
  startWhen?: Promise<unknown>;
  /** Called with each stdout chunk as it arrives, within the cap (streaming). */
  onStdout?: (chunk: Buffer) => void;
  /** Called with each stderr chunk as it arrives, within the cap. */
  onStderr?: (chunk: Buffer) => void;
}

export interface ExecUsage {
  cpuSeconds: number;
  /** Peak memory × wall seconds, in GB-seconds (an upper bound of the integral). */
  memoryGbSeconds: number;
  peakMemoryBytes: number;
  wallSeconds: number;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  reason: ExecReason;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  usage: ExecUsage;
}

/** What survives of this runtime's own containers and workspaces (after a crash). */
export interface RuntimeLeftovers {
  /** Containers that were running or stopped (they were removed). */
  containers: string[];
  /** Sandbox ids whose workspace was found. */
  workspaces: string[];
}

/** What a sandbox's way out is: its network namespace, the proxy's address and the CA the sandbox trusts. */
export interface SandboxEgressAttachment {
  /** The network namespace the executions join (its only way out is the proxy). */
  netnsPath: string;
  /** `http://<address>:<port>`: HTTPS_PROXY / HTTP_PROXY of every execution. */
  proxyUrl: string;
  /** The sandbox's own CA certificate (PEM; never a key), added to the trusted bundle inside. */
  caCertificatePem: string;
  /** The sandbox's DNS resolver (its /etc/resolv.conf); absent: nothing resolves. */
  nameserver?: string;
}

/** The egress side the runtime asks at create and remove (the proxy and the sandbox network). */
export interface SandboxEgress {
  check(): Promise<void>;
  /** Makes (again) the sandbox's network and proxy endpoint; a new CA each time. */
  open(sandboxId: string): Promise<SandboxEgressAttachment>;
  /** Closes its proxy endpoint and removes its network. Idempotent. */
  close(sandboxId: string): Promise<void>;
  /** Removes the networks of this instance's sandboxes not in `keep`. */
  reconcile(keep: ReadonlySet<string>): Promise<void>;
}

export interface SandboxRuntime {
  /** Checks the runtime works here (binary, cgroups); throws naming what is missing. */
  check(): Promise<void>;
  /** Prepares the sandbox: its bundle and its size-capped workspace. Idempotent. */
  create(sandboxId: string, limits: SandboxLimits): Promise<void>;
  /** Runs one program in a fresh container of the sandbox; `kill` ends it early (reason `killed`). */
  exec(sandboxId: string, executionId: string, request: ExecRequest): { result: Promise<ExecResult>; kill: () => void };
  /** Kills what runs in the sandbox; the workspace stays. */
  stop(sandboxId: string): Promise<void>;
  /** Removes the sandbox: containers, cgroups, workspace, bundle. Idempotent. */
  remove(sandboxId: string): Promise<void>;
  /**
   * At start: removes every container of this runtime's instance (an execution that was
   * running when the orchestrator died is over) and every workspace not in `keep`.
   */
  reconcile(keep: ReadonlySet<string>): Promise<RuntimeLeftovers>;
}
