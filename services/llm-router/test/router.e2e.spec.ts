import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { Client } from 'pg';
import { audienceOf } from '@palisade/auth-verifier';
import { connectNats, serveRpc, type NatsConnection, type RpcServer } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, httpsCaller, infra, TestTokenIssuer } from '@palisade/testing';
import { NEGATIVES, POSITIVES } from './support/pii-corpus';
import { startStandIn, type StandIn } from './support/provider-standin';

// The built llm-router (offset 8900: 16006) on its own database, two provider stand-ins
// (a private one inside the perimeter, an external one), and a billing stand-in answering
// palisade.rpc.billing.reserve|settle|release over NATS as the billing service's identity
// (the billing service is being built). Callers are the official OpenAI and Anthropic SDKs
// with agent tokens (act = the user the agent acts for); the tenant comes from the token.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 8900;
const ROUTER = 7106 + OFFSET;
const tenant = `r-${randomBytes(4).toString('hex')}`;
const other = `o-${randomBytes(4).toString('hex')}`;

/** A budget ledger per tenant (micro-USD) in billing's wire format (services/billing ledger.rpc.ts): what the router must respect. */
class BillingStandIn {
  limits = new Map<string, number>();
  held = new Map<string, { tenantId: string; amount: number }>();
  spent = new Map<string, number>();
  settled: Array<{ tenantId: string; requestId: string; actualMicros: string; model: string; usage: Array<{ kind: string; quantity: number }> }> = [];
  down = false;

  handlers() {
    const used = (tenantId: string) => (this.spent.get(tenantId) ?? 0) + [...this.held.values()].filter((h) => h.tenantId === tenantId).reduce((a, h) => a + h.amount, 0);
    return {
      reserve: (p: unknown) => {
        const r = p as { tenantId: string; requestId: string; agentId: string; amountMicros: string; ttlMs: number };
        if (this.down) throw new Error('billing database down');
        const amount = Number(r.amountMicros);
        const limit = this.limits.get(r.tenantId) ?? Number.MAX_SAFE_INTEGER;
        if (used(r.tenantId) + amount > limit) return { status: 'refused', requestId: r.requestId, level: 'agent', budgetId: 'b-1', limitMicros: String(limit), postedMicros: '0', pendingMicros: '0', availableMicros: String(limit), resetsAt: '2026-12-04T00:00:00.000Z' };
        this.held.set(r.requestId, { tenantId: r.tenantId, amount });
        return { status: 'reserved', requestId: r.requestId, amountMicros: r.amountMicros, expiresAt: new Date(Date.now() + r.ttlMs).toISOString() };
      },
      settle: (p: unknown) => {
        const r = p as BillingStandIn['settled'][number];
        this.settled.push(r);
        this.held.delete(r.requestId);
        this.spent.set(r.tenantId, (this.spent.get(r.tenantId) ?? 0) + Number(r.actualMicros));
        return { status: 'settled', requestId: r.requestId, postedMicros: r.actualMicros, overrunMicros: '0', releasedMicros: '0', late: false };
      },
      release: (p: unknown) => {
        const r = p as { requestId: string };
        this.held.delete(r.requestId);
        return { status: 'released', requestId: r.requestId, releasedMicros: '0' };
      },
    };
  }
}

const estimated = (s: { usage: Array<{ kind: string }> }) => s.usage.some((u) => u.kind === 'estimated');

describe('llm-router (built service, provider stand-ins, official SDKs)', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  let onprem: StandIn;
  let cloud: StandIn;
  let billingIdentity: ServiceIdentity;
  let billingNc: NatsConnection;
  let billingServer: RpcServer;
  const billing = new BillingStandIn();
  const t: Record<string, string> = {};
  const router = (path: string, token: string, options: Parameters<ReturnType<typeof httpsCaller>>[1] = {}) => httpsCaller(ROUTER)(path, { token, ...options });
  const openai = (token: string) => new OpenAI({ apiKey: token, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
  const received = () => [...onprem.records, ...cloud.records].map((r) => r.body).join('\n');

  beforeAll(async () => {
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
    [onprem, cloud] = await Promise.all([startStandIn(), startStandIn()]);
    billingIdentity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'billing' });
    billingNc = await connectNats({ servers: infra('NATS_URL'), identity: billingIdentity, name: 'llm-router-e2e-billing' });
    const h = billing.handlers();
    billingServer = serveRpc(billingNc, { service: 'billing', handlers: { 'palisade.rpc.billing.reserve': h.reserve, 'palisade.rpc.billing.settle': h.settle, 'palisade.rpc.billing.release': h.release } });
    const issuer = await TestTokenIssuer.create(audienceOf('llm-router'));
    handles = runner.startServices({
      services: ['llm-router'],
      portOffset: OFFSET,
      logDir: join(infra('PALISADE_HOME'), 'logs', 'llm-router-e2e'),
      env: { AUTH_JWKS: issuer.jwks, LOG_LEVEL: 'warn' },
    });
    t.admin = await issuer.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['llm-router:admin'] });
    t.alice = await issuer.token({ sub: 'alice', tid: tenant, ptp: 'user' });
    t.bot = await issuer.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.otherAdmin = await issuer.token({ sub: 'admin', tid: other, ptp: 'user', scp: ['llm-router:admin'] });
    t.otherBot = await issuer.token({ sub: 'release-bot', tid: other, ptp: 'agent', act: { sub: 'mallory' } });
    await runner.waitReady(handles, { timeoutMs: 60000 });
    const put = async (path: string, body: object) => expect((await router(path, t.admin, { method: 'PUT', body })).status).toBe(200);
    await put('/v1/router/providers/onprem', { kind: 'openai', baseUrl: `${onprem.url}/v1`, compliance: 'private' });
    await put('/v1/router/providers/cloud', { kind: 'openai', baseUrl: `${cloud.url}/v1`, compliance: 'external' });
    await put('/v1/router/models/local', { providerId: 'onprem', upstreamModel: 'llama-local', contextWindow: 128000, maxOutputTokens: 2048, inputMicrosPerMTok: 100000, outputMicrosPerMTok: 200000 });
    await put('/v1/router/models/gpt', { providerId: 'cloud', upstreamModel: 'gpt-cloud', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 2500000, outputMicrosPerMTok: 10000000 });
    await put('/v1/router/routes/default', { candidates: ['gpt', 'local'] });
    await put('/v1/router/providers/claude-onprem', { kind: 'anthropic', baseUrl: `${onprem.url}/v1`, compliance: 'private' });
    await put('/v1/router/models/claude', { providerId: 'claude-onprem', upstreamModel: 'claude-local', contextWindow: 200000, maxOutputTokens: 4096, inputMicrosPerMTok: 3000000, outputMicrosPerMTok: 15000000 });
    await put('/v1/router/models/flaky', { providerId: 'cloud', upstreamModel: 'cut-stream', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 1000000, outputMicrosPerMTok: 1000000 });
  }, 120000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await billingServer?.stop();
    await billingNc?.close();
    billingIdentity?.stop();
    await Promise.all([onprem?.close(), cloud?.close()]);
  });

  beforeEach(() => {
    onprem.records.length = 0;
    cloud.records.length = 0;
  });

  it('serves an agent using the official OpenAI SDK: models, a completion and a stream, from the stand-in', async () => {
    const client = openai(t.bot);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['claude', 'default', 'flaky', 'gpt', 'local']);
    const completion = await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Say hi' }] });
    expect(completion.choices[0].message.content).toBe('echo: Say hi naïve café — 数据 ✓');
    expect(completion.model).toBe('default');
    expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
    // internal by default: the route's first candidate (external) served it, with its own model name and the default output limit
    expect(cloud.records).toHaveLength(1);
    expect(JSON.parse(cloud.records[0].body)).toMatchObject({ model: 'gpt-cloud', max_tokens: 1024 });
    expect(cloud.records[0].headers.authorization).toBeUndefined();

    const stream = await client.chat.completions.create({ model: 'default', stream: true, messages: [{ role: 'user', content: 'Stream please' }] });
    let text = '';
    let usageChunks = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usageChunks++;
    }
    expect(text).toBe('echo: Stream please naïve café — 数据 ✓');
    expect(usageChunks).toBe(0);
    expect(JSON.parse(cloud.records[1].body).stream_options).toEqual({ include_usage: true });
    // settled with the real usage (the stream's usage chunk, which the caller did not ask for)
    await eventually(() => billing.settled.length >= 2, 5000);
    expect(billing.settled.slice(-1)[0]).toMatchObject({ tenantId: tenant, model: 'gpt' });
    expect(estimated(billing.settled.slice(-1)[0])).toBe(false);
  });

  it('never lets an e-mail, an IBAN or a card reach the external provider: masked, classified confidential, served by the private one, unmasked for the caller', async () => {
    const prompt = 'Refund alice.martin@example.com on IBAN DE89 3704 0044 0532 0130 00 and card 4111 1111 1111 1111.';
    const completion = await openai(t.bot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: prompt }] });
    expect(completion.choices[0].message.content).toBe(`echo: ${prompt} naïve café — 数据 ✓`);
    expect(cloud.records).toHaveLength(0);
    expect(onprem.records).toHaveLength(1);
    for (const value of ['alice.martin@example.com', 'DE89 3704 0044 0532 0130 00', '4111 1111 1111 1111']) expect(received()).not.toContain(value);
    expect(onprem.records[0].body).toContain('⟦EMAIL_1⟧');
  });

  it('lets no value of the labelled PII corpus reach any provider, and masks none of its near-misses', async () => {
    const client = openai(t.bot);
    for (const p of POSITIVES) await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: p.text }] });
    const leaked = POSITIVES.filter((p) => received().includes(p.value)).map((p) => p.type);
    expect(leaked).toEqual([]);
    expect(cloud.records).toHaveLength(0);
    // near-misses: declared public, nothing found, so nothing masked and the external provider may serve them
    const overMasked: string[] = [];
    for (const text of NEGATIVES) {
      cloud.records.length = 0;
      await client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: text }] }, { headers: { 'x-palisade-classification': 'public' } });
      if (cloud.records.length !== 1 || !cloud.records[0].body.includes(JSON.stringify(text).slice(1, -1))) overMasked.push(text);
    }
    expect(overMasked).toEqual([]);
  });

  it('answers the Anthropic SDK through the OpenAI-compatible private provider', async () => {
    const anthropic = new Anthropic({ authToken: t.bot, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 });
    const message = await anthropic.messages.create({ model: 'local', max_tokens: 100, system: 'be brief', messages: [{ role: 'user', content: 'Hello there' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'echo: Hello there naïve café — 数据 ✓' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(JSON.parse(onprem.records[0].body)).toMatchObject({ model: 'llama-local', max_tokens: 100, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hello there' }] });
  });

  it('streams Anthropic messages from an Anthropic provider (usage counted once), and serves the OpenAI SDK from it too', async () => {
    const anthropic = new Anthropic({ authToken: t.bot, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 });
    const stream = anthropic.messages.stream({ model: 'claude', max_tokens: 200, messages: [{ role: 'user', content: 'Stream from Claude, mail bob@example.org' }] });
    const final = await stream.finalMessage();
    expect(final.content).toEqual([{ type: 'text', text: 'echo: Stream from Claude, mail bob@example.org naïve café — 数据 ✓' }]);
    expect(final.model).toBe('claude');
    expect(onprem.records[0].body).not.toContain('bob@example.org');
    const settled = await eventually(() => billing.settled.find((x) => x.model === 'claude'), 5000);
    expect(estimated(settled)).toBe(false);
    expect(settled.usage).toContainEqual({ kind: 'output_tokens', quantity: final.usage.output_tokens });
    const completion = await openai(t.bot).chat.completions.create({ model: 'claude', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hi Claude' }] });
    expect(completion.choices[0]).toMatchObject({ message: { role: 'assistant', content: 'echo: Hi Claude naïve café — 数据 ✓' }, finish_reason: 'stop' });
    expect(JSON.parse(onprem.records[1].body)).toMatchObject({ model: 'claude-local', system: 'be brief' });
  });

  it('ends a stream the provider cut with an explicit error the SDK raises, never a clean end', async () => {
    const stream = await openai(t.bot).chat.completions.create({ model: 'flaky', stream: true, messages: [{ role: 'user', content: 'one two three four five six' }] });
    let text = '';
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(String((error as Error).message)).toContain('the provider ended the stream before it was complete');
    expect(text.startsWith('echo:')).toBe(true);
    expect(cloud.records).toHaveLength(1);
    const settled = await eventually(() => billing.settled.find((x) => x.model === 'flaky'), 5000);
    expect(estimated(settled)).toBe(true);
  });

  it('keeps tenants apart: another tenant sees no model, cannot call ours, and its admin sees an empty catalog', async () => {
    const models = await openai(t.otherBot).models.list();
    expect(models.data).toEqual([]);
    const error = await openai(t.otherBot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect((error as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({ type: 'invalid_request_error', code: 'model_not_found' });
    const catalog = await router('/v1/router/catalog', t.otherAdmin);
    expect(catalog.json).toMatchObject({ providers: {}, models: {}, routes: {}, etag: 0 });
    expect(catalog.body).not.toContain('onprem');
    // a route or model of ours cannot be removed from another tenant (it does not exist there)
    expect((await router('/v1/router/routes/default', t.otherAdmin, { method: 'DELETE' })).status).toBe(404);
    expect(onprem.records.length + cloud.records.length).toBe(0);
    // agents and people without the scope do not configure models
    expect((await router('/v1/router/catalog', t.bot)).status).toBe(403);
    expect((await router('/v1/router/routes/x', t.alice, { method: 'PUT', body: { candidates: ['local'] } })).status).toBe(403);
    expect((await router('/v1/chat/completions', '', { method: 'POST', body: { model: 'default', messages: [{ role: 'user', content: 'hi' }] } })).json).toMatchObject({ error: { type: 'authentication_error' } });
  });

  it('refuses over budget with 429 naming the budget, and with 503 when billing fails; nothing is sent either way', async () => {
    billing.limits.set(tenant, 1);
    const error = await openai(t.bot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect((error as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded', budget: { level: 'agent', limitMicros: 1, resetsAt: '2026-12-04T00:00:00.000Z' } });
    billing.limits.delete(tenant);
    billing.down = true;
    const unavailable = await router('/v1/chat/completions', t.bot, { method: 'POST', body: { model: 'default', messages: [{ role: 'user', content: 'hi' }] } });
    billing.down = false;
    expect(unavailable.status).toBe(503);
    expect(unavailable.json.error).toMatchObject({ type: 'server_error' });
    expect(onprem.records.length + cloud.records.length).toBe(0);
  });

  it('records every model call as a model_io event: ids, classification, tokens and masking counts in data, texts only in personal', async () => {
    const owner = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_llm_router', user: 'palisade_llm_router_owner' });
    await owner.connect();
    try {
      const rows = await eventually(async () => {
        const r = await owner.query(`SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.model-call.recorded'`, [tenant]);
        const envelopes = r.rows.map((x) => x.envelope);
        return envelopes.some((e) => e.data.outcome === 'refused' && e.data.reason === 'budget:agent') && envelopes.some((e) => e.data.guards.pii.byType.iban === 1) ? envelopes : undefined;
      }, 5000);
      const masked = rows.find((e) => e.data.guards.pii.byType.iban === 1);
      expect(masked).toMatchObject({ actor: { type: 'agent', id: 'release-bot' }, data: { agentId: 'release-bot', userId: 'alice', providerId: 'onprem', classification: 'confidential', outcome: 'served' }, personal: { subjectId: 'alice' } });
      expect(JSON.stringify(masked.data)).not.toMatch(/alice\.martin|DE89|4111/);
      expect(JSON.stringify(masked.personal)).toContain('alice.martin@example.com');
      expect(rows.some((e) => e.data.outcome === 'refused' && e.data.reason === 'budget:agent')).toBe(true);
      // zero retention: the tenant's next calls keep no text, the audit event still counts them
      expect((await router('/v1/router/settings', t.admin, { method: 'PUT', body: { zeroRetention: true } })).status).toBe(200);
      const reply = await router('/v1/chat/completions', t.bot, { method: 'POST', body: { model: 'local', messages: [{ role: 'user', content: 'forget me please' }] } });
      expect(reply.status).toBe(200);
      const requestId = reply.headers['x-palisade-request-id'];
      const forgotten = await eventually(async () => (await owner.query(`SELECT envelope FROM palisade.events WHERE stream_id = $1`, [`model-call-${requestId}`])).rows[0]?.envelope, 5000);
      expect(forgotten.data).toMatchObject({ outcome: 'served', model: 'local' });
      expect(forgotten.personal).toBeUndefined();
      expect(JSON.stringify(forgotten)).not.toContain('forget me');
      // the durable settlement billing's metering reads (llm-router.usage.recorded, stream usage-<requestId>)
      const usage = await eventually(async () => (await owner.query(`SELECT envelope FROM palisade.events WHERE stream_id = $1`, [`usage-${requestId}`])).rows[0]?.envelope, 5000);
      expect(usage).toMatchObject({ type: 'llm-router.usage.recorded', tenantId: tenant, data: { requestId, agentId: 'release-bot', model: 'local' } });
      expect(usage.data.actualMicros).toMatch(/^\d+$/);
    } finally {
      await owner.end();
    }
  });
});
