import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readdir, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { PalisadeError } from '@palisade/contracts';
import { CGROUP_CONTROLLERS, cgroupSettings, oomKills } from './cgroups';
import { watchCpu } from './cpu-budget';
import { generatedEtc, HOST_ID_BASE, ociConfig, SANDBOX_GID, SANDBOX_UID, WARM_CONTROL } from './oci-config';
import { seccompProfile } from './seccomp';
import { allOrUndo } from './settled';
import { compileSeccompBpf } from './seccomp-bpf';
import type { ExecRequest, ExecResult, RuntimeLeftovers, SandboxEgress, SandboxEgressAttachment, SandboxLimits, SandboxRuntime } from './runtime.port';

const run = promisify(execFile);

export interface CrunRuntimeOptions {
  /** The crun binary. */
  crun: string;
  /** Bundles, workspaces and crun's state live under `<runDir>/<instance>/`. */
  runDir: string;
  /** Names this orchestrator's containers and cgroups (`psbx-<instance>-…`), so a restart finds exactly its own. */
  instance: string;
  /** Where the cgroup v1 controllers are mounted. */
  cgroupRoot?: string;
  /** The egress proxy and sandbox network; without it a sandbox has only loopback (no way out at all). */
  egress?: SandboxEgress;
  /**
   * Keep WARM_PER_SANDBOX containers per sandbox created ahead (`crun run --detach`), its init (a shell)
   * blocked on its stdin until an execution hands it the program: the first byte then needs no
   * crun process, no namespaces, mounts or cgroups made. Each container still serves one
   * execution only (its own pid namespace and cgroup), and is removed after it.
   */
  warm?: boolean;
}

/** A container created ahead for a sandbox's next execution. */
interface WarmContainer {
  name: string;
  cgroup: string;
  /** Host side of WARM_CONTROL: `cmd.sh`, `stdin`, `status`. */
  control: string;
  configFile: string;
  child: ChildProcessWithoutNullStreams;
  /** This end of the init's fd 3: the go is a line written here. */
  go: Writable;
}

/**
 * The warm container's init: wait for the go (a line on fd 3, a socket to this process that
 * crun passes in, `--preserve-fds`; crun gives a detached container /dev/null as stdin),
 * close it, run the command on the execution's stdin, record its status.
 */
const WARM_INIT = `read -r _ <&3 && exec 3<&- && . ${WARM_CONTROL}/cmd.sh < ${WARM_CONTROL}/stdin; echo $? > ${WARM_CONTROL}/status`;

/** A word for sh, quoted (no expansion of anything in it). */
const shQuote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** The host's trusted roots, to which a sandbox's bundle adds its own CA. */
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** Inside the sandbox: the bundle of the host's roots and the sandbox's CA (the generated /etc, read-only). */
export const SANDBOX_CA_BUNDLE = '/etc/ssl/sandbox-ca-bundle.pem';
export const SANDBOX_CA_CERT = '/etc/ssl/sandbox-ca.pem';

/** The environment that sends programs through the proxy and makes them trust the sandbox's CA. */
export function egressEnvironment(proxyUrl: string): Record<string, string> {
  return {
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    ALL_PROXY: proxyUrl,
    NO_PROXY: '',
    no_proxy: '',
    SSL_CERT_FILE: SANDBOX_CA_BUNDLE,
    CURL_CA_BUNDLE: SANDBOX_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: SANDBOX_CA_BUNDLE,
    NODE_EXTRA_CA_CERTS: SANDBOX_CA_CERT,
  };
}

/** Lets `kill` arrive before the container exists: it is killed as soon as it does. */
interface KillSwitch {
  requested: boolean;
  kill?: () => void;
}

function killBy(control: KillSwitch): void {
  control.requested = true;
  control.kill?.();
}

interface Running {
  sandboxId: string;
  kill: () => void;
}

const SANDBOX_DIR_NAME = /^[0-9a-f-]{36}$/;
/** After a kill, how long crun may take to tear the container down before its processes are killed one by one. */
const KILL_GRACE_MS = 2000;
/**
 * Warm containers kept per sandbox: two, so that the one replacing the container an execution
 * takes can be made after that execution's first output (a spawn from this process blocks its
 * event loop ~4 ms on a quiet machine, the page tables copied; inside the first-byte window it
 * delayed the commit and the go) while a back-to-back execution still finds one ready.
 */
export const WARM_PER_SANDBOX = 2;
/** A SIGKILL we did not send, with the memory peak at least this share of the limit, is an OOM kill. */
const OOM_PEAK_RATIO = 0.97;

/**
 * The local isolation runtime: crun (an OCI runtime from Debian) driven through
 * child_process. A sandbox is a directory with its generated /etc, an empty root of
 * mount points and a workspace tmpfs mounted with a size cap; each execution is
 * `crun run` of a fresh container (config.json from `ociConfig`) in a cgroup the runtime
 * creates with the sandbox's limits.
 */
export class CrunRuntime implements SandboxRuntime {
  private readonly base: string;
  private readonly state: string;
  private readonly cgroupRoot: string;
  private readonly cgroupParent: string;
  private readonly prefix: string;
  private readonly running = new Map<string, Running>();
  /** The containers created ahead for each sandbox's next executions, oldest first (when `warm`). */
  private readonly warmBySandbox = new Map<string, Array<Promise<WarmContainer | undefined>>>();
  /** Each prepared sandbox's limits (its limits.json, read once). */
  private readonly limitsBySandbox = new Map<string, SandboxLimits>();
  private seccompBpf: string | undefined;
  /** `<runDir>/<instance>/…` made once by the first create (reconcile makes it again itself). */
  private basePrepared: Promise<void> | undefined;
  /** The host's trusted roots, read once (the first sandbox with egress) and shared by every sandbox's bundle. */
  private hostRoots: Promise<string> | undefined;

  constructor(private readonly options: CrunRuntimeOptions) {
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(options.instance)) throw new PalisadeError('validation', 'instance: lowercase letters, digits and - (at most 31)');
    this.base = join(options.runDir, options.instance);
    this.state = join(this.base, 'crun');
    this.cgroupRoot = options.cgroupRoot ?? '/sys/fs/cgroup';
    this.cgroupParent = join('palisade-sandbox', options.instance);
    this.prefix = `psbx-${options.instance}-`;
  }

  async check(): Promise<void> {
    try {
      await run(this.options.crun, ['--version']);
    } catch {
      throw new PalisadeError('unavailable', `the sandbox runtime ${this.options.crun} is missing: run deploy/local/sandbox.sh up`);
    }
    for (const controller of CGROUP_CONTROLLERS) {
      if (!existsSync(join(this.cgroupRoot, controller, 'cgroup.procs'))) throw new PalisadeError('unavailable', `cgroup v1 controller ${controller} is not mounted at ${this.cgroupRoot}/${controller}`);
    }
    const unified = join(this.cgroupRoot, 'unified', 'cgroup.controllers');
    if (existsSync(unified) && (await readFile(unified, 'utf8')).trim() !== '') {
      throw new PalisadeError('unavailable', 'the cgroup v2 hierarchy holds controllers (crun refuses hybrid mode): run deploy/local/sandbox.sh up');
    }
    await this.prepareBase();
    await this.options.egress?.check();
    this.seccompBpf ??= await compileSeccompBpf(seccompProfile());
  }

  /** Whether the seccomp profile was compiled once at check (else crun compiles it on every run). */
  get seccompPrecompiled(): boolean {
    return this.seccompBpf !== undefined;
  }

  /** `<runDir>/<instance>/sandboxes` must be traversable by the containers' mapped root (a nobody on the host); crun's state is root's only. */
  private async prepareBase(): Promise<void> {
    await mkdir(join(this.base, 'sandboxes'), { recursive: true, mode: 0o755 });
    for (const dir of [this.options.runDir, this.base, join(this.base, 'sandboxes')]) await chmod(dir, 0o755);
    await mkdir(this.state, { recursive: true, mode: 0o700 });
  }

  async create(sandboxId: string, limits: SandboxLimits): Promise<void> {
    const dir = this.sandboxDir(sandboxId);
    // the sandbox's network and CA (a claim from the pool, or made now) while its directories are made
    const opening = this.options.egress?.open(sandboxId);
    opening?.catch(() => undefined); // judged below, after the directories (never an unhandled rejection meanwhile)
    let etc: string;
    try {
      etc = await this.prepareDirectories(dir, limits);
    } catch (error) {
      await opening?.then(() => this.options.egress?.close(sandboxId), () => undefined);
      throw error;
    }
    this.limitsBySandbox.set(sandboxId, limits);
    if (opening) {
      const [attachment, roots] = await Promise.all([opening, (this.hostRoots ??= readFile(HOST_CA_BUNDLE, 'utf8').catch(() => ''))]);
      const { netnsPath, proxyUrl } = attachment;
      await Promise.all([
        writeFile(join(etc, 'ssl', 'sandbox-ca.pem'), attachment.caCertificatePem, { mode: 0o644 }),
        writeFile(join(etc, 'ssl', 'sandbox-ca-bundle.pem'), `${roots.trimEnd()}\n${attachment.caCertificatePem}`, { mode: 0o644 }),
        attachment.nameserver ? writeFile(join(etc, 'resolv.conf'), `nameserver ${attachment.nameserver}\noptions timeout:2 attempts:2\n`, { mode: 0o644 }) : undefined,
        writeFile(join(dir, 'egress.json'), JSON.stringify({ netnsPath, proxyUrl }), { mode: 0o600 }),
      ]);
    }
    const workspace = join(dir, 'workspace');
    if (!(await isMountPoint(workspace))) {
      const owner = `uid=${HOST_ID_BASE + SANDBOX_UID},gid=${HOST_ID_BASE + SANDBOX_GID}`;
      await run('mount', ['-t', 'tmpfs', '-o', `size=${limits.workspaceMb}m,nr_inodes=${limits.workspaceMb * 256},mode=0700,${owner},nosuid,nodev`, 'tmpfs', workspace]);
    }
  }

  /** The sandbox's directories: an empty root of mount points, its generated /etc, its limits, the workspace's mount point (independent steps at once). Returns its /etc. */
  private async prepareDirectories(dir: string, limits: SandboxLimits): Promise<string> {
    const rootfs = join(dir, 'rootfs');
    const etc = join(dir, 'etc');
    await (this.basePrepared ??= this.prepareBase().catch((error: unknown) => {
      this.basePrepared = undefined; // tried again by the next create
      throw error;
    }));
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await Promise.all([
      mkdir(join(dir, 'execs'), { recursive: true, mode: 0o700 }),
      mkdir(join(dir, 'workspace'), { recursive: true, mode: 0o700 }),
      writeFile(join(dir, 'limits.json'), JSON.stringify(limits), { mode: 0o600 }),
      (async () => {
        await Promise.all(['usr', 'etc', 'proc', 'dev', 'workspace', 'tmp', WARM_CONTROL.slice(1)].map((d) => mkdir(join(rootfs, d), { recursive: true, mode: 0o755 })));
        await Promise.all(
          [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']].map(async ([link, target]) => {
            if (!(await lstat(join(rootfs, link)).catch(() => undefined))) await symlink(target, join(rootfs, link));
          }),
        );
      })(),
      (async () => {
        await Promise.all(['ssl/certs', 'alternatives'].map((d) => mkdir(join(etc, d), { recursive: true, mode: 0o755 })));
        await Promise.all(Object.entries(generatedEtc()).map(([name, content]) => writeFile(join(etc, name), content, { mode: 0o644 })));
      })(),
    ]);
    return etc;
  }

  exec(sandboxId: string, executionId: string, request: ExecRequest): { result: Promise<ExecResult>; kill: () => void } {
    const control: KillSwitch = { requested: false };
    return { result: this.execute(sandboxId, executionId, request, control), kill: () => killBy(control) };
  }

  private async execute(sandboxId: string, executionId: string, request: ExecRequest, control: KillSwitch): Promise<ExecResult> {
    // a sandbox's first execution makes its container itself (a start stays as fast as without the pool) and fills
    // the pool; a warm execution has the one it took replaced after its first output (executeWarm)
    const warm = this.warmBySandbox.get(sandboxId)?.shift();
    if (warm) {
      const container = await warm;
      const result = container && (await this.executeWarm(sandboxId, container, request, control));
      if (result) return result;
      // the warm container did not take the go (it died meanwhile): a container of its own, as without a pool
    }
    this.warmUp(sandboxId);
    const limits = await this.limitsOf(sandboxId);
    const container = `${this.prefix}${executionId}`;
    const cgroup = join(this.cgroupParent, container);
    const dir = this.sandboxDir(sandboxId);
    // every step ended before the undo (a controller's directory made after it would stay behind)
    const [egress] = await allOrUndo([this.egressOf(sandboxId), this.makeCgroup(cgroup, limits)], () => this.removeCgroup(cgroup));
    const configFile = join(dir, 'execs', `${executionId}.json`);
    const pidFile = join(dir, 'execs', `${executionId}.pid`);
    const config = ociConfig({
      rootfs: join(dir, 'rootfs'),
      etc: join(dir, 'etc'),
      workspace: join(dir, 'workspace'),
      cgroupsPath: `/${cgroup}/c`,
      argv: request.argv,
      env: egress ? { ...request.env, ...egressEnvironment(egress.proxyUrl) } : (request.env ?? {}),
      netnsPath: egress?.netnsPath,
      limits,
      seccompBpf: this.seccompBpf,
    });
    await writeFile(configFile, JSON.stringify(config), { mode: 0o600 });
    try {
      await request.startWhen;
    } catch (error) {
      await this.removeCgroup(cgroup);
      await rm(configFile, { force: true });
      throw error;
    }

    const started = process.hrtime.bigint();
    const child = spawn(this.options.crun, ['--root', this.state, 'run', '--bundle', dir, '--config', configFile, '--pid-file', pidFile, container], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    const stdout = capped(request.outputCapBytes, request.onStdout);
    const stderr = capped(request.outputCapBytes, request.onStderr);
    child.stdout.on('data', stdout.push);
    child.stderr.on('data', stderr.push);
    child.stdin.on('error', () => undefined); // a program that does not read its stdin
    child.stdin.end(request.stdin ?? '');

    const guard = this.guard(sandboxId, container, cgroup, request, limits.cpuMillis, control);
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    }).finally(guard.end);
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const startedContainer = existsSync(pidFile);
    const usage = await this.usageOf(cgroup);
    await this.removeCgroup(cgroup);
    await rm(configFile, { force: true });
    await rm(pidFile, { force: true });
    if (!startedContainer && !guard.timedOut()) {
      const detail = stderr.text().split('\n')[0]?.slice(0, 300) ?? '';
      throw new PalisadeError('unavailable', `the sandbox runtime could not start the execution: ${detail}`);
    }
    // crun reports a container killed by a signal as 128 + signal
    const code = exit.code;
    const signal = code !== null && code > 128 && code < 160 ? signalName(code - 128) : exit.signal;
    return outcomeOf({ code, signal: signal ?? null, usage, memoryMb: limits.memoryMb, wallSeconds, timedOut: guard.timedOut(), overQuota: guard.overQuota(), killed: control.requested, stdout, stderr });
  }

  async stop(sandboxId: string): Promise<void> {
    for (const r of this.running.values()) if (r.sandboxId === sandboxId) r.kill();
  }

  async remove(sandboxId: string): Promise<void> {
    await this.stop(sandboxId);
    const warm = this.warmBySandbox.get(sandboxId) ?? [];
    this.warmBySandbox.delete(sandboxId);
    for (const container of await Promise.all(warm)) if (container) await this.discardWarm(container);
    const dir = this.sandboxDir(sandboxId);
    this.limitsBySandbox.delete(sandboxId);
    await this.options.egress?.close(sandboxId);
    const workspace = join(dir, 'workspace');
    if (await isMountPoint(workspace)) await run('umount', ['-l', workspace]);
    await rm(dir, { recursive: true, force: true });
  }

  async reconcile(keep: ReadonlySet<string>): Promise<RuntimeLeftovers> {
    await this.prepareBase();
    const containers = (await run(this.options.crun, ['--root', this.state, 'list', '-q'])).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((id) => id.startsWith(this.prefix));
    for (const id of containers) {
      await run(this.options.crun, ['--root', this.state, 'delete', '-f', id]).catch(() => undefined);
    }
    // cgroups left by a container crun no longer knows (killed between mkdir and run), in every hierarchy crun writes to
    for (const hierarchy of await this.hierarchies()) {
      const parent = join(this.cgroupRoot, hierarchy, this.cgroupParent);
      for (const name of await readdir(parent).catch(() => [] as string[])) {
        if (!name.startsWith(this.prefix)) continue;
        if (!containers.includes(name)) containers.push(name);
        await this.killCgroup(join(this.cgroupParent, name, 'c'));
        await this.removeCgroup(join(this.cgroupParent, name));
      }
    }
    // the instance's own cgroup in every hierarchy, empty now; made again by the next execution
    for (const hierarchy of await this.hierarchies()) {
      await rmdir(join(this.cgroupRoot, hierarchy, this.cgroupParent)).catch(() => undefined);
    }
    const workspaces: string[] = [];
    const sandboxes = join(this.base, 'sandboxes');
    for (const id of await readdir(sandboxes).catch(() => [] as string[])) {
      if (!SANDBOX_DIR_NAME.test(id)) continue;
      workspaces.push(id);
      await rm(join(sandboxes, id, 'execs'), { recursive: true, force: true });
      await rm(join(sandboxes, id, 'warm'), { recursive: true, force: true });
      await mkdir(join(sandboxes, id, 'execs'), { recursive: true, mode: 0o700 });
      if (!keep.has(id)) await this.remove(id);
    }
    await this.options.egress?.reconcile(keep);
    return { containers, workspaces };
  }

  /** Starts creating the sandbox's warm containers until WARM_PER_SANDBOX are there or coming (when `warm`). */
  private warmUp(sandboxId: string): void {
    if (!this.options.warm) return;
    const pool = this.warmBySandbox.get(sandboxId) ?? [];
    this.warmBySandbox.set(sandboxId, pool);
    // undefined when it failed: the execution then starts a container itself
    while (pool.length < WARM_PER_SANDBOX) pool.push(this.createWarm(sandboxId).catch(() => undefined));
  }

  private async createWarm(sandboxId: string): Promise<WarmContainer> {
    const limits = await this.limitsOf(sandboxId);
    const name = `${this.prefix}w${randomUUID()}`;
    const cgroup = join(this.cgroupParent, name);
    const dir = this.sandboxDir(sandboxId);
    const control = join(dir, 'warm', name);
    // independent steps at once (each a thread-pool round; this runs while an execution does, and the next one may wait for it)
    // (each step to its end before the undo: what a step still running made after it would stay behind)
    const [egress] = await allOrUndo(
      [
        this.egressOf(sandboxId),
        this.makeCgroup(cgroup, limits),
        // the control directory: root's, but for the status file the init writes
        (async () => {
          await mkdir(control, { recursive: true, mode: 0o755 });
          await allOrUndo([
            writeFile(join(control, 'status'), '', { mode: 0o644 }).then(() => chown(join(control, 'status'), HOST_ID_BASE + SANDBOX_UID, HOST_ID_BASE + SANDBOX_GID)),
            writeFile(join(control, 'cmd.sh'), 'exit 125\n', { mode: 0o644 }),
          ]);
        })(),
      ],
      async () => {
        await this.removeCgroup(cgroup);
        await rm(control, { recursive: true, force: true });
      },
    );
    const configFile = join(dir, 'execs', `${name}.json`);
    const config = ociConfig({
      rootfs: join(dir, 'rootfs'),
      etc: join(dir, 'etc'),
      workspace: join(dir, 'workspace'),
      cgroupsPath: `/${cgroup}/c`,
      argv: ['/bin/sh', '-c', WARM_INIT],
      env: egress ? egressEnvironment(egress.proxyUrl) : {},
      netnsPath: egress?.netnsPath,
      limits,
      seccompBpf: this.seccompBpf,
      control,
    });
    await writeFile(configFile, JSON.stringify(config), { mode: 0o600 });
    const child = spawn(this.options.crun, ['--root', this.state, 'run', '--detach', '--preserve-fds', '1', '--bundle', dir, '--config', configFile, name], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    child.stdin.on('error', () => undefined);
    const go = child.stdio[3] as Writable;
    go.on('error', () => undefined); // an init that is gone: EPIPE, seen by signalGo
    const container: WarmContainer = { name, cgroup, control, configFile, child, go };
    const started = await new Promise<boolean>((resolve) => {
      child.once('error', () => resolve(false));
      child.once('exit', (code) => resolve(code === 0));
    });
    if (!started) {
      await this.discardWarm(container);
      throw new PalisadeError('unavailable', 'the warm container could not be created');
    }
    return container;
  }

  /**
   * Tells a warm container's init to go: a line on its fd 3, written at once (no file
   * opened, no process, no wait for the init to open anything: the line waits in the
   * socket); false if nobody holds the other end any more (the init is gone).
   */
  private signalGo(w: WarmContainer): Promise<boolean> {
    if (!w.go.writable) return Promise.resolve(false);
    return new Promise((resolve) => {
      w.go.write('go\n', (error) => resolve(!error));
      w.go.end();
    });
  }

  /**
   * Runs one program in a warm container: its command and stdin written, the go given; the
   * container is removed after. Undefined (and nothing ran) if the container did not take the go.
   */
  private async executeWarm(sandboxId: string, w: WarmContainer, request: ExecRequest, control: KillSwitch): Promise<ExecResult | undefined> {
    // the replacement after the first output has been forwarded (or at the end, without output): out of the first byte's way
    let replaced = false;
    const replace = () => {
      if (replaced) return;
      replaced = true;
      // not for a sandbox removed meanwhile (its pool is gone): the container would have no owner until a restart
      setImmediate(() => this.warmBySandbox.has(sandboxId) && this.warmUp(sandboxId));
    };
    try {
      return await this.runWarm(sandboxId, w, request, control, replace);
    } finally {
      replace();
    }
  }

  private async runWarm(sandboxId: string, w: WarmContainer, request: ExecRequest, control: KillSwitch, replace: () => void): Promise<ExecResult | undefined> {
    const limits = await this.limitsOf(sandboxId);
    const exports = Object.entries(request.env ?? {}).map(([k, v]) => `export ${k}=${shQuote(v)}\n`);
    await Promise.all([
      writeFile(join(w.control, 'stdin'), request.stdin ?? '', { mode: 0o644 }),
      // a program named without a path through env(1), as crun would run it (a PATH lookup, never a shell builtin or
      // function); a path sh runs itself (no lookup either: one exec fewer)
      writeFile(join(w.control, 'cmd.sh'), `${exports.join('')}${request.argv[0].includes('/') ? '' : '/usr/bin/env -- '}${request.argv.map(shQuote).join(' ')}\n`, { mode: 0o644 }),
    ]);
    try {
      await request.startWhen;
    } catch (error) {
      await this.discardWarm(w); // never given the go: its init never read the command
      throw error;
    }
    const stdout = capped(request.outputCapBytes, request.onStdout);
    const stderr = capped(request.outputCapBytes, request.onStderr);
    w.child.stdout.once('data', replace);
    w.child.stderr.once('data', replace);
    w.child.stdout.on('data', stdout.push);
    w.child.stderr.on('data', stderr.push);
    const closed = Promise.all([new Promise((r) => w.child.stdout.once('close', r)), new Promise((r) => w.child.stderr.once('close', r))]);
    const started = process.hrtime.bigint();
    const guard = this.guard(sandboxId, w.name, w.cgroup, request, limits.cpuMillis, control);
    try {
      if (!(await this.signalGo(w))) {
        await this.discardWarm(w);
        return undefined;
      }
      await closed;
    } finally {
      guard.end();
    }
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const status = (await readFile(join(w.control, 'status'), 'utf8').catch(() => '')).trim();
    const usage = await this.usageOf(w.cgroup);
    // measured: the container goes in the background (the caller has its answer sooner; a restart's reconcile removes what a crash left)
    void this.discardWarm(w).catch(() => undefined);
    // sh reports a program killed by a signal as 128 + signal; no status: the container itself was killed
    const code = /^\d+$/.test(status) ? Number(status) : null;
    const signal = code === null ? 'SIGKILL' : code > 128 && code < 160 ? signalName(code - 128) : null;
    return outcomeOf({ code, signal, usage, memoryMb: limits.memoryMb, wallSeconds, timedOut: guard.timedOut(), overQuota: guard.overQuota(), killed: control.requested, stdout, stderr });
  }

  /**
   * While a container runs (cold or warm): killed on its timeout, once it used its
   * CPU-seconds, or on request (also by sandbox); `end` stops all of it once it is over.
   */
  private guard(sandboxId: string, container: string, cgroup: string, request: ExecRequest, cpuMillis: number, control: KillSwitch): { timedOut: () => boolean; overQuota: () => boolean; end: () => void } {
    let timedOut = false;
    let overQuota = false;
    const killContainer = this.killerOf(container, cgroup);
    const timer = setTimeout(() => {
      timedOut = true;
      killContainer();
    }, request.timeoutMs);
    const unwatch = this.watchCpu(cgroup, request, cpuMillis, () => {
      overQuota = true;
      killContainer();
    });
    control.kill = killContainer;
    this.running.set(container, { sandboxId, kill: () => killBy(control) });
    if (control.requested) killContainer();
    return {
      timedOut: () => timedOut,
      overQuota: () => overQuota,
      end: () => {
        clearTimeout(timer);
        unwatch();
        this.running.delete(container);
      },
    };
  }

  /** Kills a container (crun), then what is left of its processes (the cgroup) after a grace. */
  private killerOf(container: string, cgroup: string): () => void {
    return () => {
      void run(this.options.crun, ['--root', this.state, 'kill', container, 'KILL']).catch(() => undefined);
      setTimeout(() => void this.killCgroup(`${cgroup}/c`), KILL_GRACE_MS).unref();
    };
  }

  /** Removes a warm container, its cgroups and its control directory. */
  private async discardWarm(w: WarmContainer): Promise<void> {
    await run(this.options.crun, ['--root', this.state, 'delete', '-f', w.name]).catch(() => undefined);
    await this.killCgroup(`${w.cgroup}/c`);
    await this.removeCgroup(w.cgroup);
    await rm(w.control, { recursive: true, force: true });
    await rm(w.configFile, { force: true });
    w.child.stdout.destroy();
    w.child.stderr.destroy();
    w.child.stdin.destroy();
    w.go.destroy();
  }

  /** Containers of this instance crun knows (running or not). */
  async containers(): Promise<string[]> {
    const { stdout } = await run(this.options.crun, ['--root', this.state, 'list', '-q']);
    return stdout.split('\n').map((l) => l.trim()).filter((id) => id.startsWith(this.prefix));
  }

  /**
   * An execution's cgroup under each controller, with the sandbox's limits: the controllers
   * at once, each one's files in their order (memory's limit before memory+swap's).
   */
  private async makeCgroup(cgroup: string, limits: SandboxLimits): Promise<void> {
    const settings = cgroupSettings(limits);
    // settled, not all: it fails only once no controller's mkdir still runs (its caller's undo comes after)
    await allOrUndo(
      CGROUP_CONTROLLERS.map(async (controller) => {
        await mkdir(join(this.cgroupRoot, controller, cgroup), { recursive: true });
        for (const s of settings.filter((c) => c.controller === controller)) await writeFile(join(this.cgroupRoot, controller, cgroup, s.file), s.value);
      }),
    );
  }

  private sandboxDir(sandboxId: string): string {
    if (!SANDBOX_DIR_NAME.test(sandboxId)) throw new PalisadeError('validation', 'sandboxId: must be a lowercase UUID');
    return join(this.base, 'sandboxes', sandboxId);
  }

  private async egressOf(sandboxId: string): Promise<Pick<SandboxEgressAttachment, 'netnsPath' | 'proxyUrl'> | undefined> {
    if (!this.options.egress) return undefined;
    try {
      return JSON.parse(await readFile(join(this.sandboxDir(sandboxId), 'egress.json'), 'utf8')) as Pick<SandboxEgressAttachment, 'netnsPath' | 'proxyUrl'>;
    } catch {
      throw new PalisadeError('not_found', 'sandbox network not prepared on this host');
    }
  }

  private async limitsOf(sandboxId: string): Promise<SandboxLimits> {
    const known = this.limitsBySandbox.get(sandboxId);
    if (known) return known;
    try {
      const limits = JSON.parse(await readFile(join(this.sandboxDir(sandboxId), 'limits.json'), 'utf8')) as SandboxLimits;
      this.limitsBySandbox.set(sandboxId, limits);
      return limits;
    } catch {
      throw new PalisadeError('not_found', 'sandbox not prepared on this host');
    }
  }

  private async usageOf(cgroup: string): Promise<{ cpuSeconds: number; peak: number; oomKills: number }> {
    const [cpuSeconds, peak, oom] = await Promise.all([this.cpuSecondsOf(cgroup), this.cgroupFile(cgroup, 'memory', 'memory.max_usage_in_bytes'), this.cgroupFile(cgroup, 'memory', 'memory.oom_control')]);
    return { cpuSeconds, peak: Number(peak.trim()) || 0, oomKills: oomKills(oom) };
  }

  /** CPU-seconds the cgroup's processes used so far. */
  private async cpuSecondsOf(cgroup: string): Promise<number> {
    return Number((await this.cgroupFile(cgroup, 'cpuacct', 'cpuacct.usage')).trim()) / 1e9;
  }

  /** A cgroup file's content; '0' once the cgroup is gone. */
  private cgroupFile(cgroup: string, controller: string, file: string): Promise<string> {
    return readFile(join(this.cgroupRoot, controller, cgroup, file), 'utf8').catch(() => '0');
  }

  /**
   * Calls `onExceeded` once the cgroup used `limit` CPU-seconds: looked at when it could
   * first have (its CPU quota bounds the rate), then again for what is left. Returns the stop.
   */
  private watchCpu(cgroup: string, request: ExecRequest, cpuMillis: number, onExceeded: () => void): () => void {
    if (request.cpuSecondsLimit === undefined) return () => undefined;
    return watchCpu({ readUsed: () => this.cpuSecondsOf(cgroup), limit: request.cpuSecondsLimit, limitNow: request.cpuSecondsLimitNow, cpuMillis, onExceeded });
  }

  /** SIGKILL to every process of a cgroup (pids controller), for what a container kill left behind. */
  private async killCgroup(cgroup: string): Promise<void> {
    const procs = await readFile(join(this.cgroupRoot, 'pids', cgroup, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const pid of procs.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Every cgroup hierarchy mounted under the root (crun makes the container's path in each: devices, freezer, blkio…). */
  private async hierarchies(): Promise<string[]> {
    const names = await readdir(this.cgroupRoot).catch(() => [] as string[]);
    return names.filter((name) => existsSync(join(this.cgroupRoot, name, 'cgroup.procs')));
  }

  /** rmdir of the execution's cgroups in every hierarchy (the child first), retried while the kernel still tears processes down. */
  private async removeCgroup(cgroup: string): Promise<void> {
    for (const hierarchy of await this.hierarchies()) {
      for (const path of [join(this.cgroupRoot, hierarchy, cgroup, 'c'), join(this.cgroupRoot, hierarchy, cgroup)]) {
        for (let attempt = 0; attempt < 50 && existsSync(path); attempt++) {
          try {
            await rmdir(path);
          } catch {
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    }
  }
}

/** Whether `path` is a mount point (from /proc/self/mountinfo). */
async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === path);
}

function signalName(n: number): NodeJS.Signals | null {
  const names: Record<number, NodeJS.Signals> = { 1: 'SIGHUP', 2: 'SIGINT', 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ' };
  return names[n] ?? null;
}

/**
 * An execution's outcome from what was seen. cgroup v1 counts an OOM kill in the memcg of
 * the killed task (a child that is gone), not in ours that hit the limit: a SIGKILL we did
 * not send, with the peak at the limit, is the OOM killer's.
 */
function outcomeOf(o: {
  code: number | null;
  signal: string | null;
  usage: { cpuSeconds: number; peak: number; oomKills: number };
  memoryMb: number;
  wallSeconds: number;
  timedOut: boolean;
  /** Killed for using the CPU-seconds it was given. */
  overQuota: boolean;
  killed: boolean;
  stdout: ReturnType<typeof capped>;
  stderr: ReturnType<typeof capped>;
}): ExecResult {
  const { usage, wallSeconds, signal } = o;
  const oom = usage.oomKills > 0 || (signal === 'SIGKILL' && usage.peak >= o.memoryMb * 1024 * 1024 * OOM_PEAK_RATIO);
  return {
    exitCode: signal ? null : o.code,
    signal,
    reason: o.timedOut ? 'timeout' : o.overQuota ? 'quota' : o.killed ? 'killed' : oom ? 'oom' : 'exited',
    stdout: o.stdout.bytes(),
    stderr: o.stderr.bytes(),
    stdoutTruncated: o.stdout.truncated(),
    stderrTruncated: o.stderr.truncated(),
    usage: { cpuSeconds: usage.cpuSeconds, peakMemoryBytes: usage.peak, memoryGbSeconds: (usage.peak / 1024 ** 3) * wallSeconds, wallSeconds },
  };
}

/** Keeps (and passes on) the first `cap` bytes of a stream and counts the rest. */
function capped(cap: number, onChunk?: (chunk: Buffer) => void) {
  const chunks: Buffer[] = [];
  let kept = 0;
  let dropped = 0;
  return {
    push: (chunk: Buffer) => {
      const room = cap - kept;
      if (room <= 0) {
        dropped += chunk.length;
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(part);
      onChunk?.(part);
      kept += part.length;
      dropped += chunk.length - part.length;
    },
    bytes: () => Buffer.concat(chunks),
    text: () => Buffer.concat(chunks).toString('utf8'),
    truncated: () => dropped > 0,
  };
}
