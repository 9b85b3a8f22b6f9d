import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { eventually, httpsCaller, infra, queryServiceDatabase, TestTokenIssuer } from '@palisade/testing';
import { startStandIn, type StandIn } from './support/provider-standin';

// Budgets first, under load: the built billing service and THREE llm-router processes
// (offset 9980: billing 17087, routers 17088-17090) sharing one agent budget, 192
// concurrent requests spread over them (non-streaming, streaming, streams the provider
// cuts, streams the caller abandons). Whatever the interleaving: every request is served
// (a cut stream ends with its error event) or refused with 429 in OpenAI's shape; what
// billing posts never exceeds the budget and equals what the routers settled; no hold is
// left pending past the requests' deadline. Budget allotments are on (the default, 8 × the worst
// case): most reservations are served from a router's allotment in memory, settled against it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 9980;
const BILLING = 7107 + OFFSET;
const ROUTERS = [17088, 17089, 17090];
const LIMIT = 20_000;
const DEADLINE_MS = 20_000;
const tenant = `b-${randomBytes(4).toString('hex')}`;

type Kind = 'json' | 'stream' | 'provider-cut' | 'caller-cut';
interface Outcome {
  kind: Kind;
  status: number;
  body: string;
}

/** One call to a router: the whole answer, or (caller-cut) the connection dropped after the first bytes of the stream. */
function callRouter(port: number, token: string, kind: Kind, i: number, ca: Buffer): Promise<Outcome> {
  const body = JSON.stringify({
    model: kind === 'provider-cut' ? 'burst-flaky' : 'burst',
    max_tokens: 200,
    ...(kind === 'json' ? {} : { stream: true }),
    messages: [{ role: 'user', content: `burst request ${i} one two three four five` }],
  });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', ca, servername: 'localhost', agent: false, timeout: 60_000, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (kind === 'caller-cut' && res.statusCode === 200) {
            req.destroy();
            resolve({ kind, status: 200, body: text });
          }
        });
        res.on('end', () => resolve({ kind, status: res.statusCode ?? 0, body: text }));
        res.on('error', () => resolve({ kind, status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', (error) => (kind === 'caller-cut' ? undefined : reject(error)));
    req.end(body);
  });
}

describe('one budget, three router processes, 192 concurrent requests', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  let standIn: StandIn;
  const t: Record<string, string> = {};
  const budget = () => httpsCaller(BILLING)('/v1/budgets/agent/burst-bot', { token: t.billingAdmin });

  beforeAll(async () => {
    standIn = await startStandIn();
    const issuer = await TestTokenIssuer.create(audienceOf('llm-router'));
    const billingIssuer = await TestTokenIssuer.create(audienceOf('billing'));
    const jwks = JSON.stringify({ keys: [issuer, billingIssuer].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
    const logDir = join(infra('PALISADE_HOME'), 'logs', 'llm-router-budget-e2e');
    const env = { AUTH_JWKS: jwks, LOG_LEVEL: 'warn', LLM_ROUTER_REQUEST_DEADLINE_MS: String(DEADLINE_MS), LLM_ROUTER_CATALOG_CACHE_MS: '0' };
    handles = runner.startServices({ services: ['billing'], portOffset: OFFSET, logDir, env });
    // the first router migrates (if needed) before the others start; one process each (LLM_ROUTER_WORKERS=1): three
    // routers, each holding its own allotments, as the counts below expect (with two workers each, six held them)
    const [first, ...others] = ROUTERS.map((port, n) => () => runner.startServices({ services: ['llm-router'], portOffset: OFFSET, logDir: join(logDir, `router-${n}`), env: { ...env, HTTP_PORT: String(port), LLM_ROUTER_WORKERS: '1' } }));
    handles.push(...first());
    await runner.waitReady(handles, { timeoutMs: 90000 });
    // (readiness is tracked by service name: each router on its own)
    for (const start of others) {
      const router = start();
      handles.push(...router);
      await runner.waitReady(router, { timeoutMs: 90000 });
    }
    t.billingAdmin = await billingIssuer.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['auth:admin'] });
    t.admin = await issuer.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['llm-router:admin'] });
    t.bot = await issuer.token({ sub: 'burst-bot', tid: tenant, ptp: 'agent', act: { sub: 'carol' } });
    const put = async (path: string, body: object) => expect((await httpsCaller(ROUTERS[0])(path, { token: t.admin, method: 'PUT', body })).status).toBe(200);
    await put('/v1/router/providers/local', { kind: 'openai', baseUrl: `${standIn.url}/v1`, compliance: 'private' });
    // 1 µ$ per token in and out: the worst case of a call is its input bound + 200
    await put('/v1/router/models/burst', { providerId: 'local', upstreamModel: 'burst', contextWindow: 32000, maxOutputTokens: 200, inputMicrosPerMTok: 1_000_000, outputMicrosPerMTok: 1_000_000 });
    await put('/v1/router/models/burst-flaky', { providerId: 'local', upstreamModel: 'cut-stream', contextWindow: 32000, maxOutputTokens: 200, inputMicrosPerMTok: 1_000_000, outputMicrosPerMTok: 1_000_000 });
    expect((await httpsCaller(BILLING)('/v1/budgets/agent/burst-bot', { token: t.billingAdmin, method: 'PUT', body: { limitMicros: String(LIMIT), period: 'day', timeZone: 'UTC' } })).status).toBe(200);
  }, 240000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await standIn?.close();
  });

  it('never overshoots the budget: every request served or refused with 429, billing posts exactly what the routers settled, no hold left', async () => {
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const kinds: Kind[] = ['json', 'stream', 'json', 'provider-cut', 'stream', 'caller-cut'];
    const outcomes = await Promise.all(Array.from({ length: 192 }, (_, i) => callRouter(ROUTERS[i % 3], t.bot, kinds[i % kinds.length], i, ca)));

    const served = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status === 429);
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 429).map((o) => `${o.status} ${o.body.slice(0, 200)}`)).toEqual([]);
    expect(served.length + refused.length).toBe(192);
    // the budget was too small for all of them at once, and large enough for many
    expect(refused.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(20);
    for (const r of refused) expect(JSON.parse(r.body)).toMatchObject({ error: { type: 'insufficient_quota', code: 'budget_exceeded', budget: { level: 'agent', limitMicros: LIMIT } } });
    for (const o of served) {
      if (o.kind === 'json') expect(JSON.parse(o.body)).toMatchObject({ object: 'chat.completion' });
      if (o.kind === 'stream') expect(o.body.trimEnd().endsWith('data: [DONE]')).toBe(true);
      // a stream the provider cut ends with an explicit error event, never a clean end
      if (o.kind === 'provider-cut') {
        expect(o.body).toContain('"code":"stream_cut"');
        expect(o.body).not.toContain('[DONE]');
      }
    }

    // every served call settled (the cut ones at their hold, marked estimated): nothing pending, posted ≤ limit
    const settled = await eventually(async () => {
      const status = (await budget()).json as { postedMicros: string; pendingMicros: string };
      return status.pendingMicros === '0' ? status : undefined;
    }, DEADLINE_MS + 10_000);
    expect(Number(settled.postedMicros)).toBeGreaterThan(0);
    expect(Number(settled.postedMicros)).toBeLessThanOrEqual(LIMIT);
    // and it is exactly the sum the three routers settled (their usage events), one per served call
    const usages = await eventually(async () => {
      const rows = await queryServiceDatabase<{ actual: string; estimated: boolean }>('llm-router', `SELECT envelope->'data'->>'actualMicros' AS actual, envelope->'data'->'usage' @> '[{"kind":"estimated"}]' AS estimated FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.usage.recorded'`, [tenant]);
      return rows.length === served.length ? rows : undefined;
    }, 15_000);
    expect(usages.reduce((sum, u) => sum + Number(u.actual), 0)).toBe(Number(settled.postedMicros));
    // provider-cut streams are charged their hold, marked estimated
    expect(usages.filter((u) => u.estimated).length).toBeGreaterThanOrEqual(served.filter((o) => o.kind === 'provider-cut').length);
    // most reservations were served from budget allotments (routers' blocks, one billing hold each), every allotment ended:
    // a router returns one once idle (LLM_ROUTER_ALLOTMENT_IDLE_MS, 1 s) with its requests settled, so one drawn to 0
    // may still be held (holding nothing: pending is 0 above) for about that long after the last settle
    type HoldCount = { kind: string; drawn: boolean; status: string; n: number };
    const holdsNow = () =>
      queryServiceDatabase<HoldCount>('billing', `SELECT kind, allotment_id IS NOT NULL AS drawn, status, count(*)::int AS n FROM palisade.holds WHERE tenant_id = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, [tenant]);
    const countIn = (rows: HoldCount[], f: (h: HoldCount) => boolean) => rows.filter(f).reduce((sum, h) => sum + h.n, 0);
    const holds = await eventually(async () => {
      const rows = await holdsNow();
      return countIn(rows, (h) => h.kind === 'allotment' && h.status === 'held') === 0 ? rows : undefined;
    }, 10_000);
    const count = (f: (h: HoldCount) => boolean) => countIn(holds, f);
    expect(count((h) => h.kind === 'allotment')).toBeGreaterThan(0);
    expect(count((h) => h.kind === 'request' && h.drawn)).toBeGreaterThan(count((h) => h.kind === 'allotment'));
  }, 180000);
});
