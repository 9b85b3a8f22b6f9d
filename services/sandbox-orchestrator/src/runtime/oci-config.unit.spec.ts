import { cgroupSettings, oomKills } from './cgroups';
import { generatedEtc, HOST_ID_BASE, ociConfig, SANDBOX_UID } from './oci-config';
import { ALLOWED_SYSCALLS, CLONE_NAMESPACE_FLAGS, DENIED_SYSCALLS, seccompProfile } from './seccomp';

type Config = {
  process: { user: { uid: number; gid: number }; capabilities: Record<string, string[]>; noNewPrivileges: boolean; env: string[]; args: string[]; cwd: string };
  root: { readonly: boolean };
  mounts: Array<{ destination: string; type: string; source: string; options: string[] }>;
  linux: {
    namespaces: Array<{ type: string; path?: string }>;
    uidMappings: Array<{ containerID: number; hostID: number; size: number }>;
    cgroupsPath: string;
    resources: Record<string, unknown>;
    seccomp: { defaultAction: string; syscalls: Array<{ names: string[]; action: string; args?: Array<{ value: number; op: string }> }> };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
};

const config0 = () => ({
  rootfs: '/run/x/rootfs',
  etc: '/run/x/etc',
  workspace: '/run/x/workspace',
  cgroupsPath: '/palisade-sandbox/i/psbx-i-e/c',
  argv: ['/bin/sh', '-c', 'echo hi'],
  env: { FOO: 'bar' },
  limits: { workspaceMb: 32 },
});
const config = ociConfig(config0()) as unknown as Config;

describe('ociConfig', () => {
  it('joins the sandbox’s prepared network namespace when it has one (the egress proxy its only way out)', () => {
    const joined = ociConfig({ ...config0(), netnsPath: '/run/netns/psbx-i-s' }) as unknown as Config;
    expect(joined.linux.namespaces.find((n) => n.type === 'network')).toEqual({ type: 'network', path: '/run/netns/psbx-i-s' });
    expect(joined.linux.namespaces.filter((n) => n.path).map((n) => n.type)).toEqual(['network']);
    expect(config.linux.namespaces.find((n) => n.type === 'network')).toEqual({ type: 'network' });
  });

  it('puts the program in every namespace of its own, user namespace mapped to nobody on the host', () => {
    expect(config.linux.namespaces.map((n) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts']);
    expect(config.linux.namespaces.every((n) => n.path === undefined)).toBe(true); // never the host's
    expect(config.linux.uidMappings).toEqual([{ containerID: 0, hostID: HOST_ID_BASE, size: 65536 }]);
    expect(config.process.user).toMatchObject({ uid: SANDBOX_UID, gid: SANDBOX_UID });
  });

  it('gives no capability, sets no_new_privs, reads the root only', () => {
    for (const set of Object.values(config.process.capabilities)) expect(set).toEqual([]);
    expect(config.process.noNewPrivileges).toBe(true);
    expect(config.root.readonly).toBe(true);
  });

  it('mounts only the allowed host directories, read-only, nosuid and nodev; never the host’s secrets', () => {
    const binds = config.mounts.filter((m) => m.type === 'bind');
    expect(binds.map((m) => m.source).sort()).toEqual(['/etc/alternatives', '/etc/ssl/certs', '/run/x/etc', '/run/x/workspace', '/usr']);
    for (const m of binds.filter((b) => b.destination !== '/workspace')) expect(m.options).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    expect(binds.find((m) => m.destination === '/workspace')!.options).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev']));
    const sources = config.mounts.map((m) => m.source);
    for (const secret of ['/root', '/work', '/home', '/var', '.palisade', '/tmp', '/proc']) expect(sources.some((s) => s === secret || s.startsWith(`${secret}/`) || s.includes('.palisade'))).toBe(false);
    expect(config.mounts.find((m) => m.destination === '/proc')).toMatchObject({ type: 'proc' });
    expect(config.mounts.find((m) => m.destination === '/tmp')!.options).toContain('size=32m');
    expect(config.linux.maskedPaths).toEqual(expect.arrayContaining(['/proc/kcore', '/proc/keys']));
    expect(config.linux.readonlyPaths).toContain('/proc/sys');
  });

  it('passes only the given environment beside PATH, HOME and LANG', () => {
    expect(config.process.env.sort()).toEqual(['FOO=bar', 'HOME=/workspace', 'LANG=C.UTF-8', expect.stringMatching(/^PATH=/)].sort());
    expect(config.process.args).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(config.process.cwd).toBe('/workspace');
  });

  it('hands crun the precompiled seccomp program when there is one, keeping the profile', () => {
    const base = { rootfs: '/r', etc: '/e', workspace: '/w', cgroupsPath: '/c', argv: ['true'], env: {}, limits: { workspaceMb: 1 } };
    expect(ociConfig({ ...base, seccompBpf: 'AAAA' })).toMatchObject({ annotations: { 'run.oci.seccomp_bpf_data': 'AAAA' }, linux: { seccomp: { defaultAction: 'SCMP_ACT_ERRNO' } } });
    expect(ociConfig(base)).not.toHaveProperty('annotations');
  });

  it('denies every device and leaves the quotas to the parent cgroup', () => {
    expect(config.linux.resources).toEqual({ devices: [{ allow: false, access: 'rwm' }] });
    expect(config.linux.cgroupsPath).toBe('/palisade-sandbox/i/psbx-i-e/c');
  });

  it('generates an /etc with the sandbox user and nothing of the host', () => {
    const etc = generatedEtc();
    expect(etc.passwd).toContain(`sandbox:x:${SANDBOX_UID}:`);
    expect(Object.keys(etc)).not.toContain('shadow');
  });
});

describe('seccomp profile', () => {
  const profile = seccompProfile() as Config['linux']['seccomp'];
  const allowed = new Set(profile.syscalls.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));

  it('refuses by default and never allows the dangerous calls', () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO');
    for (const name of ['ptrace', 'mount', 'keyctl', 'add_key', 'request_key', 'bpf', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'unshare', 'setns', 'perf_event_open', 'kexec_load', 'kexec_file_load', 'init_module', 'pivot_root', 'chroot']) {
      expect(DENIED_SYSCALLS).toContain(name);
      expect(allowed.has(name)).toBe(false);
    }
    expect(ALLOWED_SYSCALLS).toEqual(expect.arrayContaining(['read', 'write', 'execve', 'fork']));
  });

  it('allows clone only without namespace flags and answers clone3 with ENOSYS', () => {
    const clone = profile.syscalls.find((s) => s.names.includes('clone'))!;
    expect(clone.args).toEqual([expect.objectContaining({ value: CLONE_NAMESPACE_FLAGS, op: 'SCMP_CMP_MASKED_EQ' })]);
    expect(CLONE_NAMESPACE_FLAGS & 0x10000000).toBeTruthy(); // CLONE_NEWUSER
    expect(profile.syscalls.find((s) => s.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });
});

describe('cgroup settings', () => {
  it('turns the limits into cgroup v1 files, memory without swap', () => {
    expect(cgroupSettings({ cpuMillis: 500, memoryMb: 256, pids: 64 })).toEqual([
      { controller: 'cpu', file: 'cpu.cfs_period_us', value: '100000' },
      { controller: 'cpu', file: 'cpu.cfs_quota_us', value: '50000' },
      { controller: 'memory', file: 'memory.limit_in_bytes', value: String(256 * 1024 * 1024) },
      { controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: String(256 * 1024 * 1024) },
      { controller: 'memory', file: 'memory.swappiness', value: '0' },
      { controller: 'pids', file: 'pids.max', value: '64' },
    ]);
  });

  it('reads the OOM kill count', () => {
    expect(oomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n')).toBe(2);
    expect(oomKills('oom_kill_disable 0\n')).toBe(0);
  });
});
