import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { audienceOf } from '@palisade/auth-verifier';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, httpsCaller, infra, startBillingStandIn, startSealPersonalStandIn, TestTokenIssuer, type BillingStandIn } from '@palisade/testing';
import { startStandIn, type StandIn } from './support/provider-standin';

// The built router as a cluster (LLM_ROUTER_WORKERS=2, offset 9340: 16446): one primary, two
// workers behind the one port. Calls are served; a worker killed with SIGKILL is replaced
// and calls keep being served; SIGTERM to the primary stops every worker and the primary
// exits 0. Billing and audit are stand-ins on NATS under a namespace of the run's own (as
// in the benchmark), so the test starts nothing but the router.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 7106 + 9340;
// a second router instance (one case): the next port
const tenant = `w-${randomBytes(4).toString('hex')}`;
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'llm-router-workers-e2e');

/** The pids of a process's children (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('llm-router workers (node:cluster behind one port)', () => {
  let handle: { child: { pid: number }; stop(signal?: string): Promise<{ code: number | null; signal: string | null }> } | undefined;
  let provider: StandIn;
  let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
  let billing: BillingStandIn | undefined;
  let token: string;
  // the log is appended to run after run: this run's part only
  const logFile = join(LOG_DIR, 'llm-router.log');
  const logFrom = existsSync(logFile) ? readFileSync(logFile).length : 0;
  const log = () => readFileSync(logFile).subarray(logFrom).toString('utf8');
  const namespaceBefore = process.env.PALISADE_RPC_NAMESPACE;
  let admin: string;
  let issuerJwks: string;
  const call = (model = 'm') => httpsCaller(PORT)('/v1/chat/completions', { token, body: { model, max_tokens: 16, messages: [{ role: 'user', content: 'hello workers' }] }, timeoutMs: 5000 });

  beforeAll(async () => {
    // the stand-ins answer this run's subjects only (read per request), not a real billing's or audit's
    process.env.PALISADE_RPC_NAMESPACE = `workers${randomBytes(4).toString('hex')}`;
    provider = await startStandIn();
    sealing = await startSealPersonalStandIn({ transportKeys: true });
    billing = await startBillingStandIn('llm-router-workers-e2e-billing');
    const issuer = await TestTokenIssuer.create(audienceOf('llm-router'));
    issuerJwks = issuer.jwks;
    [handle] = runner.startServices({
      services: ['llm-router'],
      logDir: LOG_DIR,
      // a catalog cached for a minute: a worker that kept its copy after another's change would serve it all along
      env: { HTTP_PORT: String(PORT), LOG_LEVEL: 'info', AUTH_JWKS: issuer.jwks, LLM_ROUTER_WORKERS: '2', LLM_ROUTER_CATALOG_CACHE_MS: '60000', PALISADE_RPC_NAMESPACE: process.env.PALISADE_RPC_NAMESPACE },
    });
    token = await issuer.token({ sub: 'workers-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    admin = await issuer.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['llm-router:admin'] });
    await runner.waitReady([handle], { timeoutMs: 30_000 });
    const put = async (path: string, body: object) => expect((await httpsCaller(PORT)(path, { token: admin, method: 'PUT', body })).status).toBe(200);
    await put('/v1/router/providers/p', { kind: 'openai', baseUrl: `${provider.url}/v1`, compliance: 'private' });
    await put('/v1/router/models/m', { providerId: 'p', upstreamModel: 'local', contextWindow: 128000, maxOutputTokens: 1024, inputMicrosPerMTok: 1000, outputMicrosPerMTok: 1000 });
  }, 60_000);

  afterAll(async () => {
    await handle?.stop('SIGKILL');
    await billing?.stop();
    await sealing?.stop();
    await provider?.close();
    if (namespaceBefore === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
    else process.env.PALISADE_RPC_NAMESPACE = namespaceBefore;
  });

  it('runs two workers with the service\'s node flags, and serves calls through the one port', async () => {
    const workers = childrenOf(handle!.child.pid);
    expect(workers).toHaveLength(2);
    // cluster.fork passes the primary's execArgv on: the router's semi-space size (scripts/platform-runner.js NODE_FLAGS)
    for (const pid of workers) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--max-semi-space-size=64');
    // a new connection per call: the primary hands connections to the workers in turn
    const replies = await Promise.all(Array.from({ length: 8 }, () => call()));
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect((replies[0].json as { choices: Array<{ message: { content: string } }> }).choices[0].message.content).toContain('hello workers');
  });

  it('shows a change made through one worker to the next call on every worker', async () => {
    // both workers hold the catalog (a new connection per call: the primary hands them out in turn)
    expect((await Promise.all(Array.from({ length: 6 }, () => call()))).map((r) => r.status)).toEqual(Array(6).fill(200));
    const before = await call('m2');
    expect(before.status).toBe(404);
    // one worker takes the change (and its caller's answer waits for the other to drop its copy)
    expect((await httpsCaller(PORT)('/v1/router/models/m2', { token: admin, method: 'PUT', body: { providerId: 'p', upstreamModel: 'local', contextWindow: 128000, maxOutputTokens: 1024, inputMicrosPerMTok: 1000, outputMicrosPerMTok: 1000 } })).status).toBe(200);
    const after = await Promise.all(Array.from({ length: 6 }, () => call('m2')));
    expect(after.map((r) => r.status)).toEqual(Array(6).fill(200));
  });

  it('answers a scrape of /metrics through either worker with every worker\'s counts, summed', async () => {
    const operator = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    try {
      const { cert, key } = operator.tlsOptions() as { cert: string; key: string };
      const served = async () => {
        const reply = await httpsCaller(PORT)('/metrics', { cert, key });
        expect(reply.status).toBe(200);
        const line = reply.body.split('\n').find((l) => l.startsWith('palisade_http_request_duration_seconds_count{') && l.includes('route="/v1/chat/completions"') && l.includes('status="200"'));
        return Number(line?.split(' ').pop() ?? 0);
      };
      const before = await served();
      expect((await Promise.all(Array.from({ length: 10 }, () => call()))).map((r) => r.status)).toEqual(Array(10).fill(200));
      // two scrapes, two connections: one through each worker, each counting all ten calls (a worker's own count would be about five)
      expect([await served(), await served()]).toEqual([before + 10, before + 10]);
    } finally {
      operator.stop();
    }
  });

  it('shows a change made through another router instance within 3 s, its cache kept for a minute', async () => {
    // a second router process on the same database (one worker): its catalog cached for a minute too
    const [other] = runner.startServices({
      services: ['llm-router'],
      logDir: join(LOG_DIR, 'other'),
      env: { HTTP_PORT: String(PORT + 1), LOG_LEVEL: 'info', AUTH_JWKS: issuerJwks, LLM_ROUTER_WORKERS: '1', LLM_ROUTER_CATALOG_CACHE_MS: '60000', PALISADE_RPC_NAMESPACE: process.env.PALISADE_RPC_NAMESPACE },
    }) as Array<{ stop(signal?: string): Promise<unknown> }>;
    try {
      await runner.waitReady([other], { timeoutMs: 30_000 });
      const callOther = (model: string) => httpsCaller(PORT + 1)('/v1/chat/completions', { token, body: { model, max_tokens: 16, messages: [{ role: 'user', content: 'hello instances' }] }, timeoutMs: 5000 });
      // the other instance caches the catalog without m3
      expect((await callOther('m3')).status).toBe(404);
      expect((await httpsCaller(PORT)('/v1/router/models/m3', { token: admin, method: 'PUT', body: { providerId: 'p', upstreamModel: 'local', contextWindow: 128000, maxOutputTokens: 1024, inputMicrosPerMTok: 1000, outputMicrosPerMTok: 1000 } })).status).toBe(200);
      const changedAt = Date.now();
      // the model's event, relayed to JetStream and pushed to every instance, drops its copy
      expect(await eventually(async () => ((await callOther('m3')).status === 200 ? true : undefined), 3_000, 50)).toBe(true);
      expect(Date.now() - changedAt).toBeLessThan(3_000);
    } finally {
      await other.stop('SIGTERM');
    }
  }, 45_000);

  it('replaces a worker killed with SIGKILL, and calls keep being served', async () => {
    const [victim, survivor] = childrenOf(handle!.child.pid);
    process.kill(victim, 'SIGKILL');
    const replaced = await eventually(() => {
      const now = childrenOf(handle!.child.pid);
      return now.length === 2 && !now.includes(victim) && now.includes(survivor) ? now : undefined;
    }, 10_000);
    expect(replaced).toContain(survivor);
    // the new worker listens only once connected: meanwhile the survivor takes every connection (no 503)
    const meanwhile = await Promise.all(Array.from({ length: 8 }, () => call()));
    expect(meanwhile.map((r) => r.status)).toEqual(Array(8).fill(200));
    // the replacement (worker 3) listens, and calls are still all served, now by both
    await eventually(() => /"worker":3,"port":\d+,"host":"[^"]+","msg":"HTTPS listening/.test(log()), 15_000, 100);
    const replies = await Promise.all(Array.from({ length: 8 }, () => call()));
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(log()).toMatch(new RegExp(`"pid":${victim},"code":null,"signal":"SIGKILL".*"msg":"worker exited"`));
  }, 30_000);

  it('stops every worker and exits 0 on SIGTERM to the primary, within 10 s', async () => {
    const workers = childrenOf(handle!.child.pid);
    expect(workers).toHaveLength(2);
    const started = Date.now();
    const exited = await handle!.stop('SIGTERM');
    expect(exited).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const pid of workers) expect(existsSync(`/proc/${pid}`)).toBe(false);
  }, 15_000);

  it('refuses a worker count out of 1..16 at start, naming the variable (exit 78)', () => {
    const run = spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'main.js')], { env: { ...process.env, LLM_ROUTER_WORKERS: '17' }, encoding: 'utf8', timeout: 10_000 });
    expect(run.status).toBe(78);
    expect(run.stderr).toContain('LLM_ROUTER_WORKERS: must be an integer from 1 to 16');
  });
});
