import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions, type TLSSocket } from 'node:tls';
import { randomUUID } from 'node:crypto';
import { EgressAuditBatcher } from '@palisade/sandbox-orchestrator-service/dist/egress/egress.audit';
import { SandboxCa } from '@palisade/sandbox-orchestrator-service/dist/egress/egress.ca';
import { SandboxResolver } from '@palisade/sandbox-orchestrator-service/dist/egress/egress.dns';
import { SandboxProxy } from '@palisade/sandbox-orchestrator-service/dist/egress/egress.proxy';
import { EgressService } from '@palisade/sandbox-orchestrator-service/dist/egress/egress.service';
import { SandboxNetwork } from '@palisade/sandbox-orchestrator-service/dist/egress/sandbox-network';
import { CrunRuntime } from '@palisade/sandbox-orchestrator-service/dist/runtime/crun.runtime';
import { audienceOf } from '@palisade/auth-verifier';
import { issueCertificate, loadCa } from '@palisade/pki';
import { httpsCaller, infra, TestTokenIssuer } from '@palisade/testing';
import { round, summarize } from './stats';

// The built sandbox-orchestrator (real crun runtime) and policy services at offset 9200,
// tokens of our own keys through AUTH_JWKS (as the e2e tests). Measured through the API:
//   start: POST /v1/sessions/:id/sandboxes → 201 (ready to exec: bundle, workspace tmpfs, event appended)
//   exec first byte: POST …/executions/stream of `echo x` → the first stdout line of the response
//   exec total: POST …/executions of `echo x` → the complete answer
//   exec CPU per execution (added beside the latencies, which are unchanged): the orchestrator process's own CPU
//   and its reaped children's (the crun processes it spawns) over the sampled executions, from /proc: a figure
//   that can be compared between runs on a loaded machine, where the latencies swing with the load
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../scripts/platform-runner.js');

const OFFSET = 9200;
const ORCHESTRATOR = 7104 + OFFSET;
const POLICY = 7102 + OFFSET;
const WARMUP = 5;
const SAMPLES = 40;

/** Milliseconds from sending the request to the first response chunk holding stdout. */
function firstByte(ca: Buffer, token: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const started = performance.now();
    let at: number | undefined;
    const req = httpsRequest(
      { host: '127.0.0.1', port: ORCHESTRATOR, path, method: 'POST', ca, servername: 'localhost', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.on('data', (chunk: Buffer) => {
          if (at === undefined && chunk.toString('utf8').includes('"stdout"')) at = performance.now() - started;
        });
        res.on('end', () => (at === undefined ? reject(new Error(`no stdout (status ${res.statusCode})`)) : resolve(at)));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * CPU-seconds a process and its reaped children (the crun processes) have used, from
 * /proc/<pid>/stat (utime, stime, cutime, cstime in clock ticks of 10 ms).
 */
function cpuSecondsOf(pid: number): { own: number; children: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const tick = (i: number) => Number(fields[i - 3]) / 100;
  return { own: tick(14) + tick(15), children: tick(16) + tick(17) };
}

/** `SANDBOX_BENCH_PARTS=api` (or `proxy`, `start-parts`, `escapes`, comma-separated): only those parts, e.g. for before/after runs of one of them. Default: all. */
const PARTS = new Set((process.env.SANDBOX_BENCH_PARTS ?? 'proxy,start-parts,api,escapes').split(',').map((p) => p.trim()));

export async function sandboxBenchmark(): Promise<Record<string, number>> {
  // the proxy's figures first: in process, they need none of the services below
  const proxy = PARTS.has('proxy') ? await proxyFigures() : {};
  const breakdown = PARTS.has('start-parts') ? await startBreakdown() : {};
  const api = PARTS.has('api') ? await apiFigures() : {};
  return { ...proxy, ...breakdown, ...api, ...(PARTS.has('escapes') ? await escapeFigures() : {}) };
}

/**
 * The escape tests (services/sandbox-orchestrator/test/escapes.int.spec.ts, real crun, each
 * sandbox in its egress namespace) run as they do in the test suite; the count of doors they
 * found closed, from the line the spec prints. A door not run counts as open.
 */
async function escapeFigures(): Promise<Record<string, number>> {
  const root = join(__dirname, '..', '..');
  const output = await new Promise<string>((resolve) =>
    execFile(join(root, 'node_modules', '.bin', 'jest'), ['services/sandbox-orchestrator/test/escapes.int.spec.ts'], { cwd: root, env: { ...process.env, TEST_TIER: 'int' }, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) =>
      resolve(`${stdout}\n${stderr}`),
    ),
  );
  const counted = /escape_tests_passed: (\d+)\/(\d+)/.exec(output);
  if (!counted) throw new Error(`the escape tests printed no count:\n${output.slice(-2000)}`);
  return { escape_tests_passed: Number(counted[1]), escape_tests_total: Number(counted[2]) };
}

/** Sandbox networks kept prepared by the orchestrator of the API figures (SANDBOX_NETNS_POOL_SIZE of the run; 0: the start before the pool). */
const POOL_SIZE = Number(process.env.SANDBOX_NETNS_POOL_SIZE ?? 4);
const BREAKDOWN_SAMPLES = 15;

/**
 * Where a sandbox's start goes, piece by piece, in process (the built classes, real ip,
 * nft and crun, instance `bench9200b`), medians of BREAKDOWN_SAMPLES: the network made at
 * start (namespace, veth, addresses, nftables), the CA, the proxy's and resolver's
 * listeners; the egress side whole, cold and from the pool; the runtime's create (bundle,
 * /etc, workspace tmpfs) with a pooled network. The API's start minus the runtime's is
 * the service's own part: policy round trip, quota count, event append, token.
 */
async function startBreakdown(): Promise<Record<string, number>> {
  const instance = 'bench9200b';
  const audit = new EgressAuditBatcher(async () => undefined);
  const options = { context: async () => undefined, leases: { value: async () => Promise.reject(new Error('none')) }, audit };
  const cold = new EgressService({ instance: `${instance}c`, poolSize: 0, ...options });
  const pooled = new EgressService({ instance, poolSize: 4, ...options });
  const runtime = new CrunRuntime({ crun: infra('SANDBOX_CRUN'), runDir: infra('SANDBOX_RUN_DIR'), instance, egress: pooled });
  const network = new SandboxNetwork(`${instance}n`, { proxy: 3128, transparent: [80, 443] });
  const limits = { cpuMillis: 500, memoryMb: 128, pids: 48, workspaceMb: 16, timeoutMs: 30_000 };
  const t: Record<string, number[]> = { net: [], ca: [], listen: [], cold: [], pooled: [], create: [] };
  const time = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const value = await fn();
    t[key]!.push(performance.now() - t0);
    return value;
  };
  try {
    await runtime.check();
    for (let i = 0; i < BREAKDOWN_SAMPLES; i++) {
      const link = await time('net', () => network.create());
      const ca = await time('ca', () => SandboxCa.create('bench'));
      const proxy = new SandboxProxy({ ca, ...options, transparentPorts: { http: 80, https: 443 } });
      const resolver = new SandboxResolver({ address: link.hostAddress, rules: async () => undefined, record: () => undefined });
      await time('listen', async () => {
        await proxy.listen(link.hostAddress, 3128);
        await resolver.listen(link.hostAddress);
      });
      await proxy.close();
      await resolver.close();
      await network.remove(link.netns);
      let id = randomUUID();
      await time('cold', () => cold.open(id));
      await cold.close(id);
      await pooled.warm();
      id = randomUUID();
      await time('pooled', () => pooled.open(id));
      await pooled.close(id);
      await pooled.warm();
      id = randomUUID();
      await time('create', () => runtime.create(id, limits));
      await runtime.remove(id);
    }
  } finally {
    await runtime.reconcile(new Set());
    await cold.reconcile(new Set());
    await network.reconcile();
    await audit.close();
  }
  const p50 = (key: string) => round(summarize(t[key]!).p50);
  return {
    start_part_network_p50_ms: p50('net'),
    start_part_ca_p50_ms: p50('ca'),
    start_part_listeners_p50_ms: p50('listen'),
    start_part_egress_cold_p50_ms: p50('cold'),
    start_part_egress_pooled_p50_ms: p50('pooled'),
    start_part_runtime_create_p50_ms: p50('create'),
  };
}

async function apiFigures(): Promise<Record<string, number>> {
  const tenant = `bench-${randomBytes(4).toString('hex')}`;
  const users = await TestTokenIssuer.create(audienceOf('sandbox-orchestrator'));
  const admins = await TestTokenIssuer.create(audienceOf('policy'));
  const jwks = JSON.stringify({ keys: [users, admins].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
  // this run's requests on subjects of its own (libs/nats rpcWireSubject): another suite's policy service on the shared NATS never answers them
  const namespace = process.env.PALISADE_RPC_NAMESPACE;
  process.env.PALISADE_RPC_NAMESPACE = 'bench9200';
  const handles = runner.startServices({
    services: ['policy', 'sandbox-orchestrator'],
    portOffset: OFFSET,
    logDir: join(infra('PALISADE_HOME'), 'logs', 'sandbox-bench'),
    env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn', SANDBOX_INSTANCE: 'bench9200', SANDBOX_BILLING: 'off', SANDBOX_NETNS_POOL_SIZE: String(POOL_SIZE) },
  });
  try {
    await runner.waitReady(handles, { timeoutMs: 120000 });
    const alice = await users.token({ sub: 'alice', tid: tenant, ptp: 'user' });
    const admin = await admins.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });
    const policy = (path: string, method: string, body: unknown) => httpsCaller(POLICY)(path, { token: admin, method, body });
    await policy('/v1/roles/coder', 'PUT', { inherits: [] });
    await policy('/v1/assignments', 'POST', { assignments: [{ subject: 'user:alice', role: 'coder' }] });
    await policy('/v1/policies/tools', 'PUT', { rules: [{ id: 'coders-run-code', effect: 'allow', subject: 'role:coder', resource: 'tool', action: 'invoke' }] });
    await policy('/v1/tools', 'PUT', { tools: ['execute_code'] });
    const api = httpsCaller(ORCHESTRATOR, { token: alice });
    // another team's policy instance on the shared NATS may answer the first asks (queue group): asked again
    let opened = await api('/v1/sessions', { method: 'POST', body: {} });
    for (let i = 0; i < 50 && opened.status !== 201; i++) {
      await new Promise((r) => setTimeout(r, 200));
      opened = await api('/v1/sessions', { method: 'POST', body: {} });
    }
    if (opened.status !== 201) throw new Error(`session: ${opened.status} ${opened.body}`);
    const session = opened.json.id as string;

    const start: number[] = [];
    let crossTalk = 0;
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const t0 = performance.now();
      const created = await api(`/v1/sessions/${session}/sandboxes`, { method: 'POST', body: { template: 'small' } });
      const ms = performance.now() - t0;
      if (created.status === 403 && crossTalk++ < 1000) {
        i--; // refused by another team's policy instance (cross-talk): taken again
        continue;
      }
      if (created.status !== 201) throw new Error(`create: ${created.status} ${created.body}`);
      if (i >= WARMUP) start.push(ms);
      await api(`/v1/sandboxes/${created.json.id}`, { method: 'DELETE' });
    }

    console.log(`start (pool ${POOL_SIZE}): p50 ${round(summarize(start).p50)} ms, p99 ${round(summarize(start).p99)} ms`);
    const sandbox = (await api(`/v1/sessions/${session}/sandboxes`, { method: 'POST', body: { template: 'small' } })).json.id as string;
    const echo = { command: ['/bin/echo', 'x'] };
    // the policy may take a moment to see the new rules
    for (let i = 0; i < 100 && (await api(`/v1/sandboxes/${sandbox}/executions`, { method: 'POST', body: echo })).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const first: number[] = [];
    const total: number[] = [];
    let refused = 0;
    // the orchestrator's CPU per execution (its own, and its crun children's), beside the latencies: comparable under load
    const orchestratorPid = (handles as Array<{ name: string; child: { pid: number } }>).find((h) => h.name === 'sandbox-orchestrator')!.child.pid;
    const cpu0 = cpuSecondsOf(orchestratorPid);
    let executions = 0;
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const fb = await firstByte(ca, alice, `/v1/sandboxes/${sandbox}/executions/stream`, echo).catch(() => undefined);
      const t0 = performance.now();
      const done = await api(`/v1/sandboxes/${sandbox}/executions`, { method: 'POST', body: echo });
      const ms = performance.now() - t0;
      executions += 2;
      // a refusal by another team's policy instance on the shared NATS (cross-talk): the sample is taken again
      if ((fb === undefined || done.status === 403) && refused++ < 1000) {
        i--;
        continue;
      }
      if (fb === undefined || done.json?.stdout !== 'x\n') throw new Error(`exec: ${done.status} ${done.body}`);
      if (i >= WARMUP) {
        first.push(fb);
        total.push(ms);
      }
    }
    const cpu1 = cpuSecondsOf(orchestratorPid);
    await api(`/v1/sandboxes/${sandbox}`, { method: 'DELETE' });
    const s = summarize(start);
    const f = summarize(first);
    const e = summarize(total);
    return {
      start_netns_pool_size: POOL_SIZE,
      start_p50_ms: round(s.p50),
      start_p99_ms: round(s.p99),
      exec_first_byte_p50_ms: round(f.p50),
      exec_first_byte_p99_ms: round(f.p99),
      exec_total_p50_ms: round(e.p50),
      exec_service_cpu_us_per_execution: Math.round(((cpu1.own - cpu0.own) * 1e6) / executions),
      exec_crun_cpu_us_per_execution: Math.round(((cpu1.children - cpu0.children) * 1e6) / executions),
      samples: SAMPLES,
    };
  } finally {
    await Promise.all(handles.map((h: { stop(): Promise<unknown> }) => h.stop()));
    if (namespace === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
    else process.env.PALISADE_RPC_NAMESPACE = namespace;
  }
}

// ---- the egress proxy (in process, on 127.0.0.1): what it adds to a request, next to a
// direct request to the same local HTTPS upstream in the same run. Each latency sample is
// a new connection, as a program's first request to a host is: direct (TLS to the
// upstream), spliced (CONNECT, then TLS to the upstream through the tunnel) and
// intercepted (CONNECT, TLS to the proxy's leaf of the sandbox CA; the proxy decides the
// request and sends it upstream on its kept-alive connection). Throughput: intercepted
// requests on kept-alive tunnels, PROXY_CLIENTS at once.
const PROXY_WARMUP = 50;
const PROXY_SAMPLES = 400;
const PROXY_CLIENTS = 8;
const PROXY_THROUGHPUT_MS = 4000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Reads one HTTP/1.1 response (Content-Length bodies) from a socket, resolving with its body. */
function readResponse(socket: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(head.split('\r\n')[0]));
      resolve(buffered.subarray(end + 4, end + 4 + length).toString());
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

function tlsTo(options: TlsConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(options, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A CONNECT tunnel through the proxy to host:port. */
function tunnel(proxyPort: number, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: proxyPort }, () => socket.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`));
    socket.once('error', reject);
    socket.once('data', (chunk: Buffer) => (chunk.toString('latin1').startsWith('HTTP/1.1 200') ? resolve(socket) : reject(new Error(chunk.toString('latin1').split('\r\n')[0]))));
  });
}

async function oneRequest(socket: TLSSocket, host: string, port: number, close: boolean): Promise<void> {
  const response = readResponse(socket);
  socket.write(`GET /bench HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: ${close ? 'close' : 'keep-alive'}\r\n\r\n`);
  await response;
}

export async function proxyFigures(): Promise<Record<string, number>> {
  const devCa = await loadCa(infra('PALISADE_PKI_DIR'));
  const cert = await issueCertificate(devCa, { kind: 'server', name: 'proxy-bench-upstream', dns: ['splice.bench', 'intercept.bench'] });
  const upstream = createHttpsServer({ cert: cert.certPem, key: cert.keyPem, keepAliveTimeout: 30_000 }, (_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upPort = (upstream.address() as AddressInfo).port;
  const ca = await SandboxCa.create('proxy-bench');
  const audit = new EgressAuditBatcher(async () => undefined);
  const rules = [
    { id: 'splice', host: 'splice.bench', ports: [upPort], addresses: ['127.0.0.1'] },
    { id: 'intercept', host: 'intercept.bench', ports: [upPort], addresses: ['127.0.0.1'], upstreamCaPem: cert.caPem, intercept: true },
  ];
  const proxy = new SandboxProxy({
    sandboxId: 'proxy-bench',
    ca,
    context: async () => ({ tenantId: 'bench', sessionId: 'bench', rules }),
    leases: { value: async () => Promise.reject(new Error('no injection here')) },
    audit,
    transparentPorts: { http: 0, https: 0 },
  });
  const proxyPort = await freePort();
  await proxy.listen('127.0.0.1', proxyPort);
  try {
    const direct = async () => {
      const socket = await tlsTo({ host: '127.0.0.1', port: upPort, servername: 'splice.bench', ca: cert.caPem });
      await oneRequest(socket, 'splice.bench', upPort, true);
      socket.destroy();
    };
    const through = async (host: string, trust: string) => {
      const raw = await tunnel(proxyPort, host, upPort);
      const socket = await tlsTo({ socket: raw, servername: host, ca: trust });
      await oneRequest(socket, host, upPort, true);
      socket.destroy();
    };
    const spliced = () => through('splice.bench', cert.caPem);
    const intercepted = () => through('intercept.bench', ca.certificatePem);
    const samples = { direct: [] as number[], spliced: [] as number[], intercepted: [] as number[] };
    // interleaved, so that the machine's load falls on the three alike
    for (let i = 0; i < PROXY_WARMUP + PROXY_SAMPLES; i++) {
      for (const [name, fn] of [['direct', direct], ['spliced', spliced], ['intercepted', intercepted]] as const) {
        const t0 = performance.now();
        await fn();
        if (i >= PROXY_WARMUP) samples[name].push(performance.now() - t0);
      }
    }
    // throughput: kept-alive intercepted tunnels, each sending its next request when the last is answered
    let done = 0;
    const until = performance.now() + PROXY_THROUGHPUT_MS;
    await Promise.all(
      Array.from({ length: PROXY_CLIENTS }, async () => {
        const socket = await tlsTo({ socket: await tunnel(proxyPort, 'intercept.bench', upPort), servername: 'intercept.bench', ca: ca.certificatePem });
        while (performance.now() < until) {
          await oneRequest(socket, 'intercept.bench', upPort, false);
          done++;
        }
        socket.destroy();
      }),
    );
    const d = summarize(samples.direct);
    const s = summarize(samples.spliced);
    const c = summarize(samples.intercepted);
    return {
      proxy_direct_p50_ms: round(d.p50),
      proxy_direct_p99_ms: round(d.p99),
      proxy_spliced_p50_ms: round(s.p50),
      proxy_spliced_added_p50_ms: round(s.p50 - d.p50),
      proxy_intercepted_p99_ms: round(c.p99),
      proxy_intercepted_added_p50_ms: round(c.p50 - d.p50),
      proxy_intercepted_added_p99_ms: round(c.p99 - d.p99),
      proxy_intercepted_per_s: Math.round(done / (PROXY_THROUGHPUT_MS / 1000)),
      proxy_samples: PROXY_SAMPLES,
    };
  } finally {
    await proxy.close();
    await audit.close();
    await new Promise((r) => upstream.close(r));
  }
}
