import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { AccessTokenVerifier, ACCESS_TOKEN_ISSUER, audienceOf, RevocationList } from '@palisade/auth-verifier';
import { infra } from '@palisade/testing';
import { cpuMsOf, round } from './stats';

/**
 * auth: the built auth service on its own port and schema, measured over HTTPS (keep-alive):
 * refresh-token exchanges/s (and the CPU time each costs the service and this client),
 * and password sign-ins/s at the service's argon2id parameters;
 * and, in this process, access-token verification through AccessTokenVerifier (the
 * guard path, revocation list populated) next to bare jose of the same token.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../scripts/platform-runner.js');
const PORT = 13151;
const VERIFY_COUNT = Number(process.env.BENCH_AUTH_VERIFY ?? 20000);
const REFRESH_CHAINS = 32;
const REFRESH_SECONDS = 8;
const SIGNINS = 48;
const PASSWORD = 'Bench-Password-1234';

type Json = Record<string, unknown>;

/** TLS connections the client opened: with keep-alive, one per concurrent chain, not one per request. */
const connections = new WeakSet<object>();
let connectionCount = 0;

function call(agent: Agent, path: string, body?: Json, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const payload = body ? JSON.stringify(body) : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: PORT, path, method: payload ? 'POST' : 'GET', agent, servername: 'localhost', headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }));
      },
    );
    req.on('error', reject);
    req.on('socket', (socket) => {
      if (!connections.has(socket)) {
        connections.add(socket);
        connectionCount++;
      }
    });
    if (payload) req.write(payload);
    req.end();
  });
}

async function verifyRates(jwks: { keys: Json[] }, token: string) {
  const keys = createLocalJWKSet(jwks as never);
  const revocations = new RevocationList();
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 1000; i++) {
    revocations.revokeSession(`s-${i}`, now * 1000);
    revocations.revokeToken(`j-${i}`, now + 300);
  }
  const verifier = new AccessTokenVerifier({ keys, audience: audienceOf('policy'), revocations });
  const bare = () => jwtVerify(token, keys, { algorithms: ['EdDSA'], issuer: ACCESS_TOKEN_ISSUER, audience: audienceOf('policy') });
  const guard = () => verifier.verify(token);
  for (let i = 0; i < 2000; i++) {
    await guard();
    await bare();
  }
  const rate = async (f: () => Promise<unknown>) => {
    const t = performance.now();
    for (let i = 0; i < VERIFY_COUNT; i++) await f();
    return VERIFY_COUNT / ((performance.now() - t) / 1000);
  };
  // Interleaved rounds, so both see the same machine load.
  let g = 0;
  let j = 0;
  for (let round = 0; round < 3; round++) {
    j += await rate(bare);
    g += await rate(guard);
  }
  return { guard: g / 3, jose: j / 3 };
}

export async function authBenchmark(): Promise<Record<string, number>> {
  const schema = `auth_bench_${randomBytes(4).toString('hex')}`;
  const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_auth', user: 'palisade_auth_owner' });
  const c = owner();
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const dir = mkdtempSync(join(tmpdir(), 'auth-bench-'));
  const bootstrapToken = randomBytes(32).toString('base64url');
  writeFileSync(join(dir, 'bootstrap.token'), bootstrapToken, { mode: 0o600 });
  const handles = runner.startServices({
    services: ['auth'],
    env: {
      HTTP_PORT: String(PORT),
      LOG_LEVEL: 'warn',
      PG_SCHEMA: schema,
      PG_POOL_SIZE: '10',
      AUTH_JWKS_URL: `https://127.0.0.1:${PORT}/.well-known/jwks.json`,
      AUTH_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.token'),
      AUTH_ADDRESS_LOCKOUT_THRESHOLD: '100000',
    },
    logDir: join(infra('PALISADE_HOME'), 'logs', 'bench'),
  });
  const agent = new Agent({ ca: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt')), keepAlive: true, maxSockets: 64 });
  try {
    await runner.waitReady(handles, { timeoutMs: 90000 });
    const tenant = 'bench';
    const boot = await call(agent, '/v1/bootstrap', { tenantId: tenant, tenantName: 'Bench', admin: { username: 'bench', password: PASSWORD } }, { authorization: `Bootstrap ${bootstrapToken}` });
    if (boot.status !== 201) throw new Error(`bootstrap failed: ${JSON.stringify(boot.json)}`);
    const signIn = () => call(agent, `/v1/tenants/${tenant}/sign-in`, { username: 'bench', password: PASSWORD });

    // Password sign-ins (argon2id at the service's parameters), 4 in flight.
    await signIn();
    const t0 = performance.now();
    const sessions: Json[] = [];
    for (let i = 0; i < SIGNINS; i += 4) {
      const batch = await Promise.all([0, 1, 2, 3].map(() => signIn()));
      for (const r of batch) {
        if (r.status !== 200) throw new Error(`sign-in failed: ${JSON.stringify(r.json)}`);
        sessions.push(r.json);
      }
    }
    const signInsPerSec = sessions.length / ((performance.now() - t0) / 1000);

    // Refresh exchanges: REFRESH_CHAINS sessions, each exchanging its latest token in turn,
    // over a pool of keep-alive TLS connections (like a gateway or many long-lived clients;
    // a handshake per request would measure TLS, not the service).
    const chains = sessions.slice(0, REFRESH_CHAINS).map((s) => s.refreshToken as string);
    let exchanges = 0;
    const deadline = performance.now() + REFRESH_SECONDS * 1000;
    const connectionsBefore = connectionCount;
    const serverPid = handles[0].child.pid as number;
    const serverCpu0 = cpuMsOf(serverPid);
    const clientCpu0 = process.cpuUsage();
    const t1 = performance.now();
    await Promise.all(
      chains.map(async (first) => {
        let token = first;
        while (performance.now() < deadline) {
          const r = await call(agent, '/v1/token/refresh', { refreshToken: token });
          if (r.status !== 200) throw new Error(`refresh failed: ${JSON.stringify(r.json)}`);
          token = r.json.refreshToken as string;
          exchanges++;
        }
      }),
    );
    const refreshPerSec = exchanges / ((performance.now() - t1) / 1000);
    // CPU per exchange: less noisy than the rate on a shared machine.
    const serverCpuUs = ((cpuMsOf(serverPid) - serverCpu0) * 1000) / exchanges;
    const clientCpu = process.cpuUsage(clientCpu0);
    const clientCpuUs = (clientCpu.user + clientCpu.system) / exchanges;
    const refreshConnections = connectionCount - connectionsBefore;

    const jwks = (await call(agent, '/.well-known/jwks.json')).json as { keys: Json[] };
    const { guard, jose } = await verifyRates(jwks, sessions[0].accessToken as string);
    const cores = availableParallelism();
    return {
      guard_verify_per_s: round(guard, 0),
      jose_verify_per_s: round(jose, 0),
      ratio: round(guard / jose, 3),
      refresh_per_s: round(refreshPerSec, 0),
      refresh_service_cpu_us: round(serverCpuUs, 0),
      refresh_client_cpu_us: round(clientCpuUs, 0),
      refresh_new_connections: refreshConnections,
      password_signins_per_s: round(signInsPerSec, 1),
      password_signins_per_s_per_core: round(signInsPerSec / cores, 1),
      cores,
    };
  } finally {
    agent.destroy();
    await Promise.all(handles.map((h: { stop(): Promise<unknown> }) => h.stop()));
    const d = owner();
    await d.connect();
    await d.query(`DROP SCHEMA ${schema} CASCADE`);
    await d.end();
  }
}
