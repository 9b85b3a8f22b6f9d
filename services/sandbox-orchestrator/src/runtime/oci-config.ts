import { seccompProfile } from './seccomp';
import type { SandboxLimits } from './runtime.port';

/** The sandbox user inside every container (also in the generated /etc/passwd). */
export const SANDBOX_UID = 1000;
export const SANDBOX_GID = 1000;
/** Container uid/gid 0..65535 are host uid/gid HOST_ID_BASE..+65535: nobody on the host. */
export const HOST_ID_BASE = 100000;
export const HOST_ID_RANGE = 65536;
/** Host directories the root filesystem is made of, read-only (merged-/usr Debian: /bin, /lib, /lib64, /sbin are links into /usr). */
export const HOST_READONLY_DIRS: readonly string[] = ['/usr', '/etc/ssl/certs', '/etc/alternatives'];
export const WORKSPACE = '/workspace';
export const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface OciConfigInput {
  /** The bundle's own root directory (empty mount points and the /bin → usr/bin links). */
  rootfs: string;
  /** The generated /etc (passwd with the sandbox user, group, hosts, resolv.conf, nsswitch.conf). */
  etc: string;
  /** The sandbox's size-capped workspace on the host (a tmpfs of its own). */
  workspace: string;
  /** cgroup path under every v1 controller, a child of the execution's limited cgroup: `/palisade-sandbox/<instance>/<container>/c`. */
  cgroupsPath: string;
  argv: readonly string[];
  env: Readonly<Record<string, string>>;
  limits: Pick<SandboxLimits, 'workspaceMb'>;
  /** The sandbox's prepared network namespace (only way out: the egress proxy); without it, a new one with only loopback. */
  netnsPath?: string;
  /** The profile compiled once (`compileSeccompBpf`): crun loads it instead of compiling `linux.seccomp` on every run. */
  seccompBpf?: string;
  /** A warm container's control directory on the host (the command, its stdin, the exit status), at WARM_CONTROL inside. */
  control?: string;
}

/** Where a warm container's init finds its control directory. */
export const WARM_CONTROL = '/run/psbx';

/** /tmp inside: a tmpfs of its own, at most this or the workspace cap (it counts against the memory limit). */
const TMP_MAX_MB = 64;

/**
 * The OCI runtime configuration (config.json) of one execution: pure, so every layer is
 * unit-tested. Namespaces user (rootless mapping), pid, mount, network (its own, only
 * loopback: default deny), ipc, uts, cgroup; no capabilities; no_new_privs; seccomp
 * allowlist; read-only root of host directories (nosuid, nodev); its own /proc with the
 * kernel's sensitive files masked; no devices but crun's defaults (null, zero, random…);
 * /workspace and /tmp capped. The quotas are on the parent cgroup (`cgroupSettings`).
 */
export function ociConfig(input: OciConfigInput): Record<string, unknown> {
  const { limits } = input;
  const env = { PATH: SANDBOX_PATH, HOME: WORKSPACE, LANG: 'C.UTF-8', ...input.env };
  const noCapabilities = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
  const tmpMb = Math.min(TMP_MAX_MB, limits.workspaceMb);
  const readonlyBind = (source: string, destination = source) => ({ destination, type: 'bind', source, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  return {
    ociVersion: '1.0.2',
    ...(input.seccompBpf ? { annotations: { 'run.oci.seccomp_bpf_data': input.seccompBpf } } : {}),
    process: {
      terminal: false,
      user: { uid: SANDBOX_UID, gid: SANDBOX_GID, additionalGids: [] },
      args: [...input.argv],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: WORKSPACE,
      capabilities: noCapabilities,
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 },
        { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
      ],
      noNewPrivileges: true,
      oomScoreAdj: 1000,
    },
    root: { path: input.rootfs, readonly: true },
    hostname: 'sandbox',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=16m'] },
      readonlyBind('/usr'),
      readonlyBind(input.etc, '/etc'),
      ...HOST_READONLY_DIRS.filter((d) => d !== '/usr').map((d) => readonlyBind(d)),
      { destination: WORKSPACE, type: 'bind', source: input.workspace, options: ['rbind', 'rw', 'nosuid', 'nodev'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', `size=${tmpMb}m`] },
      ...(input.control ? [{ destination: WARM_CONTROL, type: 'bind', source: input.control, options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'] }] : []),
    ],
    linux: {
      namespaces: ['user', 'pid', 'mount', 'network', 'ipc', 'uts', 'cgroup'].map((type) => (type === 'network' && input.netnsPath ? { type, path: input.netnsPath } : { type })),
      uidMappings: [{ containerID: 0, hostID: HOST_ID_BASE, size: HOST_ID_RANGE }],
      gidMappings: [{ containerID: 0, hostID: HOST_ID_BASE, size: HOST_ID_RANGE }],
      cgroupsPath: input.cgroupsPath,
      // CPU, memory and pids are limited on the parent cgroup the runtime creates (cgroups.ts), so its counters outlive the container
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      seccomp: seccompProfile(),
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
        '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** The generated /etc: the sandbox user, a resolver that resolves nothing (no DNS server is reachable), no host data. */
export function generatedEtc(): Record<string, string> {
  return {
    passwd: `root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nsandbox:x:${SANDBOX_UID}:${SANDBOX_GID}:sandbox:${WORKSPACE}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nsandbox:x:${SANDBOX_GID}:\nnogroup:x:65534:\n`,
    hosts: '127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n',
    'resolv.conf': 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n',
    'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
    hostname: 'sandbox\n',
  };
}
