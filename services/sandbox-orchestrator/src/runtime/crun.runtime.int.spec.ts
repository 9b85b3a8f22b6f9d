import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { CrunRuntime, WARM_PER_SANDBOX } from './crun.runtime';
import type { SandboxLimits } from './runtime.port';

// Real crun on this machine (deploy/local/sandbox.sh installs it). Timeouts are generous; nothing is timed.
jest.setTimeout(90_000);

const LIMITS: SandboxLimits = { cpuMillis: 1000, memoryMb: 128, pids: 64, workspaceMb: 16, timeoutMs: 20_000 };
// every execution a fresh container (`crun run`), or one created ahead (warm: the program handed to its waiting init)
describe.each([false, true])('crun runtime (warm: %s)', (warm) => {
  const instance = `rt${process.pid}${warm ? 'w' : ''}`;
  const runtime = new CrunRuntime({ crun: process.env.SANDBOX_CRUN ?? 'crun', runDir: '/run/palisade-sandbox-test', instance, warm });
  const sandbox = randomUUID();
  const sh = (script: string, extra: Partial<Parameters<CrunRuntime['exec']>[2]> = {}) =>
    runtime.exec(sandbox, randomUUID(), { argv: ['/bin/sh', '-c', script], timeoutMs: LIMITS.timeoutMs, outputCapBytes: 64 * 1024, ...extra });

  beforeAll(async () => {
    await runtime.check();
    await runtime.create(sandbox, LIMITS);
  });
  afterAll(async () => {
    await runtime.reconcile(new Set());
    rmSync(`/run/palisade-sandbox-test/${instance}`, { recursive: true, force: true });
  });

  it('compiled the seccomp profile once (python3-seccomp from deploy/local/sandbox.sh)', () => {
    expect(runtime.seccompPrecompiled).toBe(true);
  });

  it('runs a program as the sandbox user in /workspace, with stdin, exit code and its output', async () => {
    const r = await sh('id -u; pwd; cat; echo err >&2; exit 3', { stdin: 'from stdin\n' }).result;
    expect(r.stdout.toString()).toBe('1000\n/workspace\nfrom stdin\n');
    expect(r.stderr.toString()).toBe('err\n');
    expect(r).toMatchObject({ exitCode: 3, reason: 'exited', signal: null });
    expect(r.usage.wallSeconds).toBeGreaterThan(0);
  });

  it('runs the program only once startWhen resolves (prepared meanwhile), and nothing when it rejects', async () => {
    const workspace = `/run/palisade-sandbox-test/${instance}/sandboxes/${sandbox}/workspace`;
    let admit!: () => void;
    const gated = sh('echo ran > /workspace/gated; echo gated', { startWhen: new Promise<void>((resolve) => (admit = resolve)) });
    await new Promise((r) => setTimeout(r, 700)); // time enough to have run, had it not waited
    expect(existsSync(`${workspace}/gated`)).toBe(false);
    admit();
    expect(await gated.result).toMatchObject({ reason: 'exited', exitCode: 0, stdout: Buffer.from('gated\n') });
    expect(existsSync(`${workspace}/gated`)).toBe(true);
    const refused = sh('echo ran > /workspace/refused', { startWhen: new Promise((_, reject) => setTimeout(() => reject(new Error('no budget')), 300)) });
    await expect(refused.result).rejects.toThrow('no budget');
    expect(existsSync(`${workspace}/refused`)).toBe(false);
    expect((await sh('echo next').result).stdout.toString()).toBe('next\n'); // the sandbox goes on
  });

  it('keeps the workspace between executions, each with a fresh /tmp', async () => {
    await sh('echo kept > /workspace/file; echo gone > /tmp/file').result;
    const r = await sh('cat /workspace/file; cat /tmp/file 2>/dev/null || echo no-tmp').result;
    expect(r.stdout.toString()).toBe('kept\nno-tmp\n');
  });

  it('caps the output it keeps and says so', async () => {
    const r = await runtime.exec(sandbox, randomUUID(), { argv: ['/bin/sh', '-c', 'head -c 200000 /dev/zero'], timeoutMs: 20_000, outputCapBytes: 1000 }).result;
    expect(r.stdout.length).toBe(1000);
    expect(r.stdoutTruncated).toBe(true);
  });

  it('kills an execution on request (reason killed) and on its timeout (reason timeout)', async () => {
    const running = sh('sleep 60');
    setTimeout(running.kill, 300);
    expect(await running.result).toMatchObject({ reason: 'killed', signal: 'SIGKILL' });
    const late = await sh('echo started; sleep 60', { timeoutMs: 1000 }).result;
    expect(late).toMatchObject({ reason: 'timeout' });
    expect(late.stdout.toString()).toBe('started\n');
  });

  it('kills an execution once it used the CPU-seconds it was given (reason quota), long before its timeout; one within them runs', async () => {
    const spin = await runtime.exec(sandbox, randomUUID(), { argv: ['/usr/bin/python3', '-c', 'while True: pass'], timeoutMs: 20_000, outputCapBytes: 1024, cpuSecondsLimit: 0.4 }).result;
    expect(spin).toMatchObject({ reason: 'quota', signal: 'SIGKILL', exitCode: null });
    expect(spin.usage.cpuSeconds).toBeGreaterThanOrEqual(0.4);
    expect(spin.usage.wallSeconds).toBeLessThan(15);
    const within = await sh('echo fine', { cpuSecondsLimit: 5 }).result;
    expect(within).toMatchObject({ reason: 'exited', exitCode: 0, stdout: Buffer.from('fine\n') });
  });

  it('measures CPU and memory from the execution’s own cgroup', async () => {
    const r = await runtime.exec(sandbox, randomUUID(), { argv: ['/usr/bin/python3', '-c', 'x = bytearray(40 * 1024 * 1024)\nn = 0\nfor i in range(3_000_000): n += i'], timeoutMs: 60_000, outputCapBytes: 1024 }).result;
    expect(r.reason).toBe('exited');
    expect(r.usage.cpuSeconds).toBeGreaterThan(0.05);
    expect(r.usage.peakMemoryBytes).toBeGreaterThan(40 * 1024 * 1024);
    expect(r.usage.memoryGbSeconds).toBeGreaterThan(0);
  });

  it('runs the program itself (not a shell builtin), with the caller’s environment quoted as given, and reports a signal', async () => {
    const r = await runtime.exec(sandbox, randomUUID(), { argv: ['printf', '%s|', "it's", '$HOME', '`id`'], env: { QUOTED: "a'b $(id) \\n" }, timeoutMs: 20_000, outputCapBytes: 1024 }).result;
    expect(r).toMatchObject({ reason: 'exited', exitCode: 0, stdout: Buffer.from("it's|$HOME|`id`|") });
    const env = await runtime.exec(sandbox, randomUUID(), { argv: ['/bin/sh', '-c', 'printf %s "$QUOTED"'], env: { QUOTED: "a'b $(id) \\n" }, timeoutMs: 20_000, outputCapBytes: 1024 }).result;
    expect(env.stdout.toString()).toBe("a'b $(id) \\n");
    const builtin = await runtime.exec(sandbox, randomUUID(), { argv: ['exit', '3'], timeoutMs: 20_000, outputCapBytes: 1024 }).result.then((r) => r.exitCode, () => 'no such program');
    expect(builtin).not.toBe(3); // no such program (crun refuses it; env answers 127), not the shell's exit
    expect(await sh(`sh -c 'kill -TERM $$'; exit $?`).result).toMatchObject({ signal: 'SIGTERM', exitCode: null });
  });

  it('gives a program no hold on the warm control directory: the command is root’s, a forged status is overwritten', async () => {
    const r = await sh('echo "echo pwned" > /run/psbx/cmd.sh; echo $? ; echo 0 > /run/psbx/status; mkdir /run/psbx/x 2>/dev/null; echo $?; exit 3').result;
    if (warm) expect(r.stdout.toString()).toBe('2\n1\n'); // sh: cannot create (permission denied); mkdir refused
    expect(r).toMatchObject({ exitCode: 3, reason: 'exited' });
    const next = await sh('cat /run/psbx/cmd.sh 2>/dev/null | head -c 0; echo ok').result;
    expect(next.stdout.toString()).toBe('ok\n'); // the next execution ran its own command
  });

  it('runs in the container made ahead when there is one, and the program holds no descriptor of the go (closed by the init)', async () => {
    await sh('true').result;
    await new Promise((r) => setTimeout(r, warm ? 1000 : 0)); // the next warm container is being made
    const r = await sh('[ -e /proc/$$/fd/3 ] && echo open || echo closed; [ -e /proc/1/fd/3 ] && echo init-open || echo init-closed; [ -e /run/psbx/cmd.sh ] && echo warm || echo cold').result;
    expect(r.stdout.toString()).toBe(`closed\ninit-closed\n${warm ? 'warm' : 'cold'}\n`);
  });

  it('runs an execution in a container of its own when the warm one’s init is gone before the go (nothing lost, nothing run twice)', async () => {
    await sh('true').result;
    const crun = (...args: string[]) => execFileSync(process.env.SANDBOX_CRUN ?? 'crun', ['--root', `/run/palisade-sandbox-test/${instance}/crun`, ...args]).toString();
    const status = (name: string) => (JSON.parse(crun('state', name)) as { status: string }).status;
    if (warm) {
      // the next executions' containers, made ahead (the one just used may still be listed, stopped, until it is deleted)
      let waiting: string[] = [];
      for (let i = 0; i < 200 && waiting.length < WARM_PER_SANDBOX; i++) {
        await new Promise((r) => setTimeout(r, 20));
        waiting = (await runtime.containers()).filter((name) => status(name) === 'running');
      }
      expect(waiting).toHaveLength(WARM_PER_SANDBOX);
      for (const name of waiting) {
        crun('kill', name, 'KILL');
        for (let i = 0; i < 200 && status(name) !== 'stopped'; i++) await new Promise((r) => setTimeout(r, 20));
      }
    }
    const r = await sh('echo fine; cat', { stdin: 'in\n' }).result;
    expect(r).toMatchObject({ exitCode: 0, reason: 'exited' });
    expect(r.stdout.toString()).toBe('fine\nin\n');
  });

  it('makes no warm container for a sandbox removed while one of its executions ran', async () => {
    await sh('true').result;
    await new Promise((r) => setTimeout(r, warm ? 2000 : 0)); // the warm containers are made
    const running = sh('sleep 5'); // no output: a warm execution's replacement comes at its end, which the removal causes
    await new Promise((r) => setTimeout(r, 300));
    await runtime.remove(sandbox);
    await running.result.catch(() => undefined);
    await new Promise((r) => setTimeout(r, warm ? 2000 : 0)); // a replacement would be made meanwhile
    expect(await runtime.containers()).toEqual([]);
    await runtime.create(sandbox, LIMITS);
  });

  it('leaves no container or cgroup behind an execution, in any cgroup hierarchy (but the next warm ones)', async () => {
    await sh('true').result;
    await new Promise((r) => setTimeout(r, warm ? 2000 : 0)); // the next warm container is being made
    const left = await runtime.containers();
    expect(left).toHaveLength(warm ? WARM_PER_SANDBOX : 0);
    for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
      const dir = `/sys/fs/cgroup/${hierarchy}/palisade-sandbox/${instance}`;
      const cgroups = existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('psbx-')) : [];
      expect([hierarchy, cgroups.filter((n) => !left.includes(n))]).toEqual([hierarchy, []]);
    }
    await runtime.remove(sandbox);
    expect(await runtime.containers()).toEqual([]);
    await runtime.create(sandbox, LIMITS);
  });
});

describe('crun runtime create: the network opened while the directories are made', () => {
  const instance = `rc${process.pid}`;
  const base = `/run/palisade-sandbox-test/${instance}`;
  const calls: string[] = [];
  let failOpen = false;
  const egress = {
    check: async () => undefined,
    open: async (id: string) => {
      calls.push(`open ${id}`);
      if (failOpen) throw new Error('no network');
      return { netnsPath: '/run/netns/none', proxyUrl: 'http://10.64.0.1:3128', caCertificatePem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n' };
    },
    close: async (id: string) => void calls.push(`close ${id}`),
    reconcile: async () => undefined,
  };
  const runtime = new CrunRuntime({ crun: process.env.SANDBOX_CRUN ?? 'crun', runDir: '/run/palisade-sandbox-test', instance, egress });
  afterAll(async () => {
    await runtime.reconcile(new Set());
    rmSync(base, { recursive: true, force: true });
  });

  it('writes the CA, the bundle and egress.json once both are done; closes the network when the directories fail, mounts nothing when the network fails', async () => {
    const ok = randomUUID();
    await runtime.create(ok, LIMITS);
    expect(readFileSync(`${base}/sandboxes/${ok}/etc/ssl/sandbox-ca.pem`, 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(JSON.parse(readFileSync(`${base}/sandboxes/${ok}/egress.json`, 'utf8'))).toEqual({ netnsPath: '/run/netns/none', proxyUrl: 'http://10.64.0.1:3128' });
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toContain(`${base}/sandboxes/${ok}/workspace`);

    const blocked = randomUUID();
    writeFileSync(`${base}/sandboxes/${blocked}`, 'a file where the directory goes');
    await expect(runtime.create(blocked, LIMITS)).rejects.toThrow();
    expect(calls).toEqual([`open ${ok}`, `open ${blocked}`, `close ${blocked}`]);
    rmSync(`${base}/sandboxes/${blocked}`);

    failOpen = true;
    const unreachable = randomUUID();
    await expect(runtime.create(unreachable, LIMITS)).rejects.toThrow('no network');
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(`${base}/sandboxes/${unreachable}/workspace`);
  });
});
