import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { join } from 'node:path';
import { EgressAuditBatcher } from '../src/egress/egress.audit';
import { SandboxCa } from '../src/egress/egress.ca';
import { SandboxProxy } from '../src/egress/egress.proxy';
import { EgressService } from '../src/egress/egress.service';

/**
 * No orphans from the sandbox network pool: a process (the built EgressService) fills its
 * pool and gives one network to a sandbox; after its `kill -9`, its namespaces, veth pairs
 * and listeners' addresses are left on the host, and the next process of the same instance
 * removes them all at reconcile (what the orchestrator does at start), the served one and
 * the waiting ones alike. Needs the build (`npx tsc -b services/sandbox-orchestrator`).
 */
jest.setTimeout(60_000);

const INSTANCE = `pool${process.pid}`;
const POOL = 3;
const netns = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`psbx-${INSTANCE}-`));
const hostEnd = (name: string) => `psx${createHash('sha256').update(`${INSTANCE}/${name.slice(`psbx-${INSTANCE}-net-`.length)}`).digest('hex').slice(0, 12)}`;
const audit = new EgressAuditBatcher(async () => undefined);
const made: EgressService[] = [];
const egress = (poolSize: number) => {
  const service = new EgressService({ instance: INSTANCE, poolSize, context: async () => undefined, leases: { value: async () => Promise.reject(new Error('none')) }, audit });
  made.push(service);
  return service;
};

afterAll(async () => {
  for (const service of made) await service.reconcile(new Set());
  await egress(0).reconcile(new Set());
  await audit.close();
});

describe('sandbox network pool', () => {
  it('leaves no orphan after kill -9: a restart of the instance removes the served and the waiting networks', async () => {
    const sandbox = randomUUID();
    const child = spawn(process.execPath, [join(__dirname, 'support', 'netns-pool-holder.js'), INSTANCE, String(POOL), sandbox], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
    });
    const left = netns();
    expect(left).toHaveLength(POOL + 1); // the pool full again, and the sandbox's
    for (const name of left) expect(existsSync(`/sys/class/net/${hostEnd(name)}`)).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(netns().sort()).toEqual(left.sort()); // orphans while nothing owns them

    const restarted = egress(POOL);
    await restarted.reconcile(new Set([sandbox])); // even a sandbox that is kept gets a new network when opened again
    expect(netns()).toEqual([]);
    for (const name of left) expect(existsSync(`/sys/class/net/${hostEnd(name)}`)).toBe(false);
    // the instance works again: a network from its new pool, none of the dead process's
    await restarted.warm();
    const attachment = await restarted.open(sandbox);
    expect(left.map((n) => `/run/netns/${n}`)).not.toContain(attachment.netnsPath);
    await restarted.warm(); // refilled behind the claim
    expect(netns()).toHaveLength(POOL + 1);
    await restarted.close(sandbox);
    await restarted.stopPool();
    expect(netns()).toEqual([]);
  });

  it('gives each sandbox a network of its own, never one served before', async () => {
    const pool = egress(2);
    await pool.warm();
    const a = randomUUID();
    const b = randomUUID();
    const first = await pool.open(a);
    await pool.close(a);
    const second = await pool.open(b);
    const third = await pool.open(a); // a sandbox opened again gets a new one too
    expect(new Set([first.netnsPath, second.netnsPath, third.netnsPath]).size).toBe(3);
    expect(new Set([first.caCertificatePem, second.caCertificatePem, third.caCertificatePem]).size).toBe(3);
    expect(existsSync(first.netnsPath)).toBe(false); // destroyed with its sandbox
    await pool.reconcile(new Set());
    expect(netns()).toEqual([]);
  });

  it('a proxy prepared ahead serves nobody until assigned (refuses, records nothing), then only its sandbox, once', async () => {
    const asked: string[] = [];
    const recorded: string[] = [];
    const proxy = new SandboxProxy({
      ca: await SandboxCa.create('pool-test'),
      context: async (id) => (asked.push(id), { tenantId: 't', sessionId: 's', rules: [] }),
      leases: { value: async () => Promise.reject(new Error('none')) },
      audit: { record: (id: string) => void recorded.push(id) } as unknown as EgressAuditBatcher,
      transparentPorts: { http: 0, https: 0 },
    });
    await proxy.listen('127.0.0.1', 0);
    const port = ((proxy as unknown as { server: { address(): AddressInfo } }).server.address()).port;
    const connectTo = () =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port }, () => socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
        socket.once('data', (d: Buffer) => (socket.destroy(), resolve(d.toString('latin1').split('\r\n')[0]!)));
        socket.once('error', reject);
      });
    try {
      expect(await connectTo()).toBe('HTTP/1.1 503 Service Unavailable');
      expect([asked, recorded]).toEqual([[], []]);
      proxy.assign('sandbox-1');
      expect(await connectTo()).toBe('HTTP/1.1 403 Forbidden'); // its rules now: none allow it
      expect([asked, recorded]).toEqual([['sandbox-1'], ['sandbox-1']]);
      expect(() => proxy.assign('sandbox-2')).toThrow('already serves a sandbox');
    } finally {
      await proxy.close();
    }
  });

  it('the built service makes its CAs on a worker thread: the key cloned back (not extractable) signs leaves a client trusting the CA accepts', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const built = require('../dist/egress/egress.ca') as { SandboxCa: typeof SandboxCa };
    expect(existsSync(join(__dirname, '..', 'dist', 'egress', 'egress.ca.worker.js'))).toBe(true);
    const ca = await built.SandboxCa.create('worker-test');
    const keys = (ca as unknown as { keys: { privateKey: { extractable: boolean } } }).keys;
    expect(keys.privateKey.extractable).toBe(false);
    const server = createTlsServer({ SNICallback: (name, cb) => void ca.contextFor(name).then((c) => cb(null, c), cb) }, (s) => s.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const text = await new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'leaf.test', ca: ca.certificatePem }, () => socket.once('data', (d: Buffer) => resolve(d.toString())));
        socket.once('error', reject);
      });
      expect(text).toBe('hello');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
