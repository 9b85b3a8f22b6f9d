import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { buildEvent, systemEventContext } from '@palisade/contracts';
import { connectNats, JetStreamEventPublisher, rpcRequest, type NatsConnection } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { httpsCaller, infra, TestTokenIssuer } from '@palisade/testing';

// The built billing service (offsets 8800, 8810, 8820: three replicas on its database). People set budgets
// over HTTPS with tokens of a key of our own (AUTH_JWKS); the ledger is asked over NATS
// as llm-router (its development certificate, the permissions of nats-requests.txt).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 8800;
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): another suite's billing (or a
// stand-in answering "reserved" to everything) on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = 'e2e8800';
const BILLING = 7107 + OFFSET;

const tenant = `b-${randomBytes(4).toString('hex')}`;
const other = `o-${randomBytes(4).toString('hex')}`;

describe('billing (built service: HTTP for people, NATS for the router)', () => {
  let handles: Array<{ stop(signal?: string): Promise<unknown> }> = [];
  let start: (offset: number) => Array<{ stop(signal?: string): Promise<unknown> }>;
  const t: Record<string, string> = {};
  const ncs: NatsConnection[] = [];
  let router: NatsConnection;
  let auditor: NatsConnection;
  const http = httpsCaller(BILLING);
  const ask = <T = Record<string, string>>(nc: NatsConnection, method: string, payload: unknown) => rpcRequest<T>(nc, `palisade.rpc.billing.${method}`, payload);

  beforeAll(async () => {
    const issuer = await TestTokenIssuer.create(audienceOf('billing'));
    start = (offset: number) =>
      runner.startServices({
        services: ['billing'],
        portOffset: offset,
        logDir: join(infra('PALISADE_HOME'), 'logs', `billing-e2e-${offset}`),
        env: { AUTH_JWKS: issuer.jwks, LOG_LEVEL: 'warn', BILLING_SWEEP_INTERVAL_MS: '200' },
      });
    // Three replicas on one database, sharing the NATS queue group and the durables.
    const replicas = [OFFSET, OFFSET + 10, OFFSET + 20].map((o) => start(o));
    handles = replicas.flat();
    for (const name of ['llm-router', 'audit'] as const) {
      const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name });
      ncs.push(await connectNats({ servers: infra('NATS_URL'), identity, name: `e2e-billing-${name}` }));
    }
    [router, auditor] = ncs;
    // one waitReady per replica: it counts services by name
    await Promise.all(replicas.map((r) => runner.waitReady(r, { timeoutMs: 90000 })));
    t.admin = await issuer.token({ sub: 'alice', tid: tenant, ptp: 'user', scp: ['auth:admin'] });
    t.member = await issuer.token({ sub: 'bob', tid: tenant, ptp: 'user', scp: ['agents:manage'] });
    t.mallory = await issuer.token({ sub: 'mallory', tid: other, ptp: 'user', scp: ['auth:admin'] });
    t.bot = await issuer.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    // auth's billing role gives these two scopes (scopesOf); a read-only API key may carry the first alone
    t.biller = await issuer.token({ sub: 'carol', tid: tenant, ptp: 'user', scp: ['billing:read', 'billing:admin'] });
    t.reader = await issuer.token({ sub: 'dave', tid: tenant, ptp: 'user', scp: ['billing:read'] });
  }, 120000);

  afterAll(async () => {
    await Promise.all(ncs.map((nc) => nc.close()));
    await Promise.all(handles.map((h) => h.stop()));
  });

  it('sets budgets over HTTP; reserves over NATS until refused naming the level; settles; status shows posted and pending', async () => {
    const put = (path: string, body: unknown, token = t.admin) => http(`/v1/budgets/${path}`, { method: 'PUT', body, token });
    expect((await put(`tenant/${tenant}`, { limitMicros: '10000000', period: 'month', timeZone: 'Asia/Shanghai' })).status).toBe(200);
    expect((await put('team/platform', { limitMicros: '5000000', period: 'month' })).status).toBe(200);
    const agent = await put('agent/release-bot', { limitMicros: '1000000', period: 'day', timeZone: 'Asia/Shanghai' });
    expect(agent.status).toBe(200);
    expect(agent.json).toMatchObject({ level: 'agent', subjectId: 'release-bot', limitMicros: '1000000', hard: true, thresholds: [50, 80, 100] });
    // refused: a member, an agent, a bad body
    expect((await put('agent/release-bot', { limitMicros: '1', period: 'day' }, t.member)).status).toBe(403);
    expect((await put('agent/release-bot', { limitMicros: '1', period: 'day' }, t.bot)).status).toBe(403);
    expect((await put('agent/release-bot', { limitMicros: '1.5', period: 'day' })).status).toBe(400);

    const reserve = (requestId: string, amountMicros: string) =>
      ask(router, 'reserve', { tenantId: tenant, requestId, agentId: 'release-bot', teamId: 'platform', amountMicros, ttlMs: 30000 });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await reserve(`req-${i}`, '300000'));
    expect(answers.map((a) => a.status)).toEqual(['reserved', 'reserved', 'reserved', 'refused', 'refused']);
    expect(answers[3]).toMatchObject({ level: 'agent', limitMicros: '1000000', pendingMicros: '900000', availableMicros: '100000' });
    expect(answers[3].resetsAt).toMatch(/T16:00:00.000Z$/); // local midnight in Asia/Shanghai
    expect(await reserve('req-0', '1')).toEqual(answers[0]); // a retry gets its first answer

    expect(await ask(router, 'settle', { tenantId: tenant, requestId: 'req-0', actualMicros: '120000', model: 'gpt-x', usage: [{ kind: 'input_tokens', quantity: 1000 }] })).toMatchObject({
      status: 'settled',
      postedMicros: '120000',
      releasedMicros: '180000',
    });
    expect(await ask(router, 'release', { tenantId: tenant, requestId: 'req-1' })).toMatchObject({ status: 'released', releasedMicros: '300000' });

    const status = await http(`/v1/budgets/agent/release-bot`, { token: t.admin });
    expect(status.json).toMatchObject({ limitMicros: '1000000', postedMicros: '120000', pendingMicros: '300000', remainingMicros: '580000' });
    const all = await http('/v1/budgets', { token: t.admin });
    expect(all.json.map((s: { level: string; postedMicros: string }) => [s.level, s.postedMicros])).toEqual([
      ['tenant', '120000'],
      ['team', '120000'],
      ['agent', '120000'],
    ]);
    // the agent reads its own remaining; another tenant sees nothing; only the router and orchestrator spend
    const me = await http('/v1/budgets/me', { token: t.bot });
    expect(me.json).toMatchObject({ remainingMicros: '580000' });
    expect((await http('/v1/budgets', { token: t.bot })).status).toBe(403);
    expect((await http('/v1/budgets/agent/release-bot', { token: t.mallory })).status).toBe(404);
    await expect(ask(auditor, 'reserve', { tenantId: tenant, requestId: 'x', agentId: 'release-bot', amountMicros: '1', ttlMs: 1000 })).rejects.toThrow();
  });

  it('reports usage by agent and model as JSON, CSV and FinOps FOCUS, to admins only', async () => {
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 86_400_000).toISOString();
    const json = await http(`/v1/usage?from=${from}&to=${to}&groupBy=agent,model`, { token: t.admin });
    expect(json.status).toBe(200);
    expect(json.json.rows).toEqual([{ day: null, teamId: null, agentId: 'release-bot', model: 'gpt-x', requests: 1, postedMicros: '120000', actualMicros: '120000', overrunMicros: '0' }]);
    const csv = await http(`/v1/usage?from=${from}&to=${to}&groupBy=team&format=csv`, { token: t.admin });
    expect(csv.headers['content-type']).toContain('text/csv');
    expect(csv.body).toBe('day,team_id,agent_id,model,requests,posted_micros,actual_micros,overrun_micros\r\n,platform,,,1,120000,120000,0\r\n');
    const focus = await http(`/v1/usage?from=${from}&to=${to}&format=focus&timeZone=Asia/Shanghai`, { token: t.admin });
    const [header, row] = focus.body.trim().split('\r\n');
    expect(header).toContain('BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd');
    expect(row).toMatch(/^0\.120000,0\.120000,USD,\d{4}-\d{2}-\d{2}T16:00:00\.000Z,.*,Usage,1,Requests,gpt-x,platform,release-bot,/);
    expect((await http(`/v1/usage?from=${from}&to=${to}`, { token: t.member })).status).toBe(403);
    expect((await http(`/v1/usage?from=${from}&to=${to}`, { token: t.mallory })).json.rows).toEqual([]);
    expect((await http(`/v1/usage?from=${to}&to=${from}`, { token: t.admin })).status).toBe(400);
  });

  it('publishes price tables (tenant over the platform default, versioned) and quotes over NATS, rounded up once', async () => {
    const table = { currency: 'USD', entries: [{ provider: 'openai', model: 'gpt-x', kind: 'input_tokens', microsPerMillion: '2500000' }, { provider: 'openai', model: 'gpt-x', kind: 'output_tokens', microsPerMillion: '10000000' }] };
    const first = await http('/v1/price-tables', { method: 'PUT', token: t.admin, body: table });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ scope: tenant, version: 1, currency: 'USD' });
    expect((await http('/v1/price-tables', { method: 'PUT', token: t.member, body: table })).status).toBe(403);
    expect((await http('/v1/price-tables/platform', { method: 'PUT', token: t.admin, body: table })).status).toBe(403);
    expect((await http('/v1/price-tables/effective', { token: t.admin })).json).toMatchObject({ scope: 'tenant', version: 1 });
    const quote = await ask(router, 'quote', { tenantId: tenant, provider: 'openai', model: 'gpt-x', usage: [{ kind: 'input_tokens', quantity: 1001 }, { kind: 'output_tokens', quantity: 333 }] });
    // 1001 × 2.5 µ + 333 × 10 µ = 2502.5 + 3330 = 5832.5 → 5833
    expect(quote).toMatchObject({ amountMicros: '5833', currency: 'USD', priceTable: { scope: 'tenant', version: 1 } });
  });

  it('meters the router\'s usage events from JetStream exactly once: a duplicate or a later RPC settle changes nothing', async () => {
    await http('/v1/budgets/agent/meter-bot', { method: 'PUT', token: t.admin, body: { limitMicros: '100000', period: 'none' } });
    expect(await ask(router, 'reserve', { tenantId: tenant, requestId: 'meter-1', agentId: 'meter-bot', amountMicros: '50000', ttlMs: 60000 })).toMatchObject({ status: 'reserved' });
    const event = buildEvent(systemEventContext('llm-router'), {
      type: 'llm-router.usage.recorded',
      tenantId: tenant,
      actor: { type: 'service', id: 'llm-router' },
      data: { requestId: 'meter-1', agentId: 'meter-bot', actualMicros: '12345', model: 'gpt-x', usage: [{ kind: 'output_tokens', quantity: 10 }] },
    });
    const publisher = new JetStreamEventPublisher(router);
    await publisher.publish([event]);
    await publisher.publish([{ ...event, id: systemEventContext('llm-router').newId() }]); // the same usage again, as another event
    let status = (await http('/v1/budgets/agent/meter-bot', { token: t.admin })).json;
    for (let i = 0; i < 100 && status.postedMicros !== '12345'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await http('/v1/budgets/agent/meter-bot', { token: t.admin })).json;
    }
    expect(status).toMatchObject({ postedMicros: '12345', pendingMicros: '0' });
    expect(await ask(router, 'settle', { tenantId: tenant, requestId: 'meter-1', actualMicros: '99999' })).toMatchObject({ postedMicros: '12345' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await http('/v1/budgets/agent/meter-bot', { token: t.admin })).json).toMatchObject({ postedMicros: '12345' });
  });

  it('192 concurrent reserves through three replicas against a budget that fits 50 admit exactly 50', async () => {
    await http('/v1/budgets/agent/crowd-bot', { method: 'PUT', token: t.admin, body: { limitMicros: String(50 * 1000), period: 'month' } });
    const answers = await Promise.all(
      Array.from({ length: 192 }, (_, i) => ask(router, 'reserve', { tenantId: tenant, requestId: `crowd-${i}`, agentId: 'crowd-bot', amountMicros: '1000', ttlMs: 60000 })),
    );
    expect(answers.filter((a) => a.status === 'reserved')).toHaveLength(50);
    expect((await http('/v1/budgets/agent/crowd-bot', { token: t.admin })).json).toMatchObject({ pendingMicros: '50000', remainingMicros: '0' });
  });

  it('meters exactly once when every replica is killed (kill -9) mid-stream and one comes back', async () => {
    const n = 150;
    await http('/v1/budgets/agent/stream-bot', { method: 'PUT', token: t.admin, body: { limitMicros: '100000000', period: 'none' } });
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, k) => ask(router, 'reserve', { tenantId: tenant, requestId: `stream-${i + k}`, agentId: 'stream-bot', amountMicros: '1000', ttlMs: 600000 })));
    }
    const publisher = new JetStreamEventPublisher(router);
    const events = Array.from({ length: n }, (_, i) =>
      buildEvent(systemEventContext('llm-router'), {
        type: 'llm-router.usage.recorded',
        tenantId: tenant,
        actor: { type: 'service', id: 'llm-router' },
        data: { requestId: `stream-${i}`, actualMicros: String(100 + i), model: 'gpt-x' },
      }),
    );
    const posted = async () => (await http('/v1/budgets/agent/stream-bot', { token: t.admin })).json.postedMicros as string;
    await publisher.publish(events);
    for (let i = 0; i < 100 && (await posted()) === '0'; i++) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(handles.map((h) => h.stop('SIGKILL')));
    const cut = await posted().catch(() => 'down');
    handles = start(OFFSET);
    await runner.waitReady(handles, { timeoutMs: 60000 });
    await publisher.publish(events.slice(0, 20)); // and some again, as a relay re-sending after its own crash would
    const expected = String(events.reduce((sum, _, i) => sum + 100 + i, 0));
    let now = await posted();
    for (let i = 0; i < 250 && now !== expected; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = await posted();
    }
    expect({ cut: cut !== expected, now }).toEqual({ cut: true, now: expected });
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 86_400_000).toISOString();
    const lines = (await http(`/v1/usage?from=${from}&to=${to}&groupBy=agent`, { token: t.admin })).json.rows.find((r: { agentId: string }) => r.agentId === 'stream-bot');
    expect(lines).toMatchObject({ requests: n, postedMicros: expected });
  }, 90000);

  it('64 concurrent reserves against a budget that fits N admit exactly N', async () => {
    const N = 7;
    await http('/v1/budgets/agent/burst-bot', { method: 'PUT', token: t.admin, body: { limitMicros: String(N * 1000), period: 'none' } });
    const answers = await Promise.all(
      Array.from({ length: 64 }, (_, i) => ask(router, 'reserve', { tenantId: tenant, requestId: `burst-${i}`, agentId: 'burst-bot', teamId: 'platform', amountMicros: '1000', ttlMs: 1000 })),
    );
    expect(answers.filter((a) => a.status === 'reserved')).toHaveLength(N);
    expect(answers.filter((a) => a.status === 'refused').every((a) => a.level === 'agent')).toBe(true);
    const status = await http('/v1/budgets/agent/burst-bot', { token: t.admin });
    expect(status.json).toMatchObject({ pendingMicros: String(N * 1000), postedMicros: '0' });
    // the sweeper releases the holds once their TTL (1 s) has passed
    let pending = status.json.pendingMicros;
    for (let i = 0; i < 40 && pending !== '0'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pending = (await http('/v1/budgets/agent/burst-bot', { token: t.admin })).json.pendingMicros;
    }
    expect(pending).toBe('0');
  });

  it("meters late and corrected usage in the period of the usage's time, for a user of the billing role; holds the user an agent acts for", async () => {
    const put = (path: string, body: unknown, token = t.biller) => http(`/v1/budgets/${path}`, { method: 'PUT', body, token });
    expect((await put('agent/late-bot', { limitMicros: '1000000', period: 'month', timeZone: 'UTC' })).status).toBe(200);
    expect((await put('agent/late-bot', { limitMicros: '1', period: 'month' }, t.reader)).status).toBe(403);
    expect((await http('/v1/budgets/agent/late-bot', { token: t.reader })).status).toBe(200);
    const thisMonth = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
    const lastMonth = new Date(Date.UTC(thisMonth.getUTCFullYear(), thisMonth.getUTCMonth() - 1, 1));
    const usage = (data: Record<string, unknown>) =>
      buildEvent(systemEventContext('llm-router'), { type: 'llm-router.usage.recorded', tenantId: tenant, actor: { type: 'service', id: 'llm-router' }, data: { agentId: 'late-bot', teamId: 'platform', model: 'gpt-x', ...data } });
    // no reserve reached billing for these: last month's arrives now, this month's is corrected down afterwards
    await new JetStreamEventPublisher(router).publish([
      usage({ requestId: 'late-1', actualMicros: '4000', occurredAt: new Date(lastMonth.getTime() + 3_600_000).toISOString() }),
      usage({ requestId: 'late-2', actualMicros: '2500' }),
      usage({ requestId: 'late-2', actualMicros: '1000', revision: 1 }),
    ]);
    const report = async (from: Date, to: Date) =>
      (await http(`/v1/usage?from=${from.toISOString()}&to=${to.toISOString()}&groupBy=agent`, { token: t.biller })).json.rows.find((r: { agentId: string }) => r.agentId === 'late-bot');
    const nextMonth = new Date(Date.UTC(thisMonth.getUTCFullYear(), thisMonth.getUTCMonth() + 1, 1));
    let now = await report(thisMonth, nextMonth);
    for (let i = 0; i < 100 && now?.postedMicros !== '1000'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = await report(thisMonth, nextMonth);
    }
    expect(now).toMatchObject({ requests: 1, postedMicros: '1000', actualMicros: '1000' });
    expect(await report(lastMonth, thisMonth)).toMatchObject({ requests: 1, postedMicros: '4000' });
    // this month's account holds this month's usage only; last month's went to last month's
    expect((await http('/v1/budgets/agent/late-bot', { token: t.biller })).json).toMatchObject({ postedMicros: '1000', pendingMicros: '0' });

    // the user an agent acts for (userId on the reserve, from its token's act.sub) is held too
    expect((await put('user/alice', { limitMicros: '5000', period: 'none' })).status).toBe(200);
    const reserve = (requestId: string, amountMicros: string) => ask(router, 'reserve', { tenantId: tenant, requestId, agentId: 'late-bot', teamId: 'platform', userId: 'alice', amountMicros, ttlMs: 30000 });
    expect(await reserve('as-alice-1', '6000')).toMatchObject({ status: 'refused', level: 'user', limitMicros: '5000' });
    expect(await reserve('as-alice-2', '3000')).toMatchObject({ status: 'reserved' });
    expect((await http('/v1/budgets/user/alice', { token: t.reader })).json).toMatchObject({ pendingMicros: '3000', remainingMicros: '2000' });
    expect(await ask(router, 'release', { tenantId: tenant, requestId: 'as-alice-2' })).toMatchObject({ status: 'released' });
  });
});
