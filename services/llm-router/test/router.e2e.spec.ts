import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { Client } from 'pg';
import { audienceOf } from '@palisade/auth-verifier';
import { eventually, httpsCaller, infra, startSealPersonalStandIn, TestTokenIssuer } from '@palisade/testing';
import { NEGATIVES, POSITIVES } from './support/pii-corpus';
import { startStandIn, type StandIn } from './support/provider-standin';

// The built llm-router and billing services (offset 8900: 16006 and 16007) on their own
// databases, the router reserving and settling with billing's ledger over NATS (mTLS),
// and two provider stand-ins (a private one inside the perimeter, an external one)
// recording what reaches them. Callers are the official OpenAI and Anthropic SDKs with
// agent tokens (act = the user the agent acts for); the tenant comes from the token.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 8900;
const ROUTER = 7106 + OFFSET;
const tenant = `r-${randomBytes(4).toString('hex')}`;
const other = `o-${randomBytes(4).toString('hex')}`;

const estimated = (s: { usage: Array<{ kind: string }> }) => s.usage.some((u) => u.kind === 'estimated');
const BILLING = 7107 + OFFSET;
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_llm_router', user: 'palisade_llm_router_owner' });

/** The settlements the router recorded for billing (llm-router.usage.recorded), by the model used. */
async function usageOf(model: string): Promise<{ requestId: string; actualMicros: string; usage: Array<{ kind: string; quantity: number }> } | undefined> {
  const c = owner();
  await c.connect();
  try {
    const r = await c.query(`SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.usage.recorded' AND envelope->'data'->>'model' = $2 ORDER BY global_position DESC LIMIT 1`, [tenant, model]);
    return r.rows[0]?.envelope.data;
  } finally {
    await c.end();
  }
}

/** The sensitive values of the masking tests' prompt, as sent and with their spaces removed. */
const PROMPT_VALUES = ['alice.martin@example.com', 'DE89 3704 0044 0532 0130 00', 'DE89370400440532013000', '4111 1111 1111 1111', '4111111111111111'];

describe('llm-router (built service, provider stand-ins, official SDKs)', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  /** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
  let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
  let onprem: StandIn;
  let cloud: StandIn;
  const t: Record<string, string> = {};
  let issuerToken: TestTokenIssuer['token'];
  const router = (path: string, token: string, options: Parameters<ReturnType<typeof httpsCaller>>[1] = {}) => httpsCaller(ROUTER)(path, { token, ...options });
  const openai = (token: string) => new OpenAI({ apiKey: token, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
  const budget = (limitMicros: string) => httpsCaller(BILLING)('/v1/budgets/agent/release-bot', { token: t.billingAdmin, method: 'PUT', body: { limitMicros, period: 'day', timeZone: 'UTC' } });
  const received = () => [...onprem.records, ...cloud.records].map((r) => r.body).join('\n');

  beforeAll(async () => {
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
    [onprem, cloud] = await Promise.all([startStandIn(), startStandIn()]);
    const issuer = await TestTokenIssuer.create(audienceOf('llm-router'));
    issuerToken = (claims) => issuer.token(claims);
    const billingIssuer = await TestTokenIssuer.create(audienceOf('billing'));
    const jwks = JSON.stringify({ keys: [issuer, billingIssuer].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
    // with a transport key: the router seals the texts locally, as with the audit service
    sealing = await startSealPersonalStandIn({ transportKeys: true });
    handles = runner.startServices({
      services: ['billing', 'llm-router'],
      portOffset: OFFSET,
      logDir: join(infra('PALISADE_HOME'), 'logs', 'llm-router-e2e'),
      env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn' },
    });
    t.billingAdmin = await billingIssuer.token({ sub: 'alice', tid: tenant, ptp: 'user', scp: ['auth:admin'] });
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
    expect((await budget('1000000000')).status).toBe(200);
    await put('/v1/router/providers/claude-onprem', { kind: 'anthropic', baseUrl: `${onprem.url}/v1`, compliance: 'private' });
    await put('/v1/router/models/claude', { providerId: 'claude-onprem', upstreamModel: 'claude-local', contextWindow: 200000, maxOutputTokens: 4096, inputMicrosPerMTok: 3000000, outputMicrosPerMTok: 15000000 });
    await put('/v1/router/models/flaky', { providerId: 'cloud', upstreamModel: 'cut-stream', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 1000000, outputMicrosPerMTok: 1000000 });
  }, 120000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await sealing?.stop();
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
    const settled = await eventually(() => usageOf('gpt').then((u) => (u && u.usage.some((x) => x.kind === 'output_tokens' && x.quantity > 0) ? u : undefined)), 5000);
    expect(estimated(settled)).toBe(false);
    // the ledger has it: posted, nothing left pending
    const ledger = await eventually(async () => {
      const status = await httpsCaller(BILLING)('/v1/budgets/agent/release-bot', { token: t.billingAdmin });
      return status.json?.pendingMicros === '0' && Number(status.json?.postedMicros) > 0 ? status.json : undefined;
    }, 10000);
    expect(Number(ledger.postedMicros)).toBeGreaterThan(0);
  });

  it('never lets an e-mail, an IBAN or a card reach the external provider: masked, classified confidential, served by the private one, unmasked for the caller', async () => {
    const prompt = 'Refund alice.martin@example.com on IBAN DE89 3704 0044 0532 0130 00 and card 4111 1111 1111 1111.';
    const completion = await openai(t.bot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: prompt }] });
    expect(completion.choices[0].message.content).toBe(`echo: ${prompt} naïve café — 数据 ✓`);
    expect(cloud.records).toHaveLength(0);
    expect(onprem.records).toHaveLength(1);
    for (const value of PROMPT_VALUES) expect(received()).not.toContain(value);
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
    const settled = await eventually(() => usageOf('claude'), 5000);
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
    const settled = await eventually(() => usageOf('flaky'), 5000);
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

  it('refuses with 429 naming the budget, its limit and its reset once the worst case no longer fits the agent budget; nothing is sent', async () => {
    // the agent may spend 5,000 µ$ more today than it has
    const spent = await eventually(async () => {
      const status = await httpsCaller(BILLING)('/v1/budgets/agent/release-bot', { token: t.billingAdmin });
      return status.json?.pendingMicros === '0' ? Number(status.json.postedMicros) : undefined;
    }, 10000);
    const limit = spent + 5000;
    expect((await budget(String(limit))).status).toBe(200);
    const client = openai(t.bot);
    // worst case 100 output tokens × 0.2 µ$ plus the input bound: fits
    expect((await client.chat.completions.create({ model: 'local', max_tokens: 100, messages: [{ role: 'user', content: 'small' }] })).choices).toHaveLength(1);
    onprem.records.length = 0;
    // worst case on the route: 2,048 output tokens (its smallest limit) × 10 µ$ at gpt's price = 20,480 µ$: does not fit
    const error = await client.chat.completions.create({ model: 'default', max_tokens: 4096, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const body = (error as InstanceType<typeof OpenAI.RateLimitError>).error as { type: string; code: string; message: string; budget: { level: string; limitMicros: number; resetsAt: string } };
    expect(body).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded', budget: { level: 'agent', limitMicros: limit } });
    expect(body.budget.resetsAt).toMatch(/T00:00:00.000Z$/);
    expect(body.message).toContain(`the agent budget has no room for this request (limit ${limit} micro-USD, resets at`);
    expect(onprem.records.length + cloud.records.length).toBe(0);
    expect((await budget('1000000000')).status).toBe(200);
  });

  it('records every model call as a model_io event: ids, classification, tokens and masking counts in data, texts only in personal', async () => {
    const db = owner();
    await db.connect();
    try {
      const rows = await eventually(async () => {
        const r = await db.query(`SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.model-call.recorded'`, [tenant]);
        const envelopes = r.rows.map((x) => x.envelope);
        return envelopes.some((e) => e.data.outcome === 'refused' && e.data.reason === 'budget:agent') && envelopes.some((e) => e.data.guards.pii.byType.iban === 1) ? envelopes : undefined;
      }, 5000);
      const masked = rows.find((e) => e.data.guards.pii.byType.iban === 1);
      expect(masked).toMatchObject({ actor: { type: 'agent', id: 'release-bot' }, data: { agentId: 'release-bot', userId: 'alice', providerId: 'onprem', classification: 'confidential', outcome: 'served' }, personal: { subjectId: 'alice' } });
      for (const value of PROMPT_VALUES) expect(JSON.stringify(masked.data)).not.toContain(value);
      // the prompt is personal data: stored only sealed (issue 10), for the audit service alone (its transport key), never in plaintext
      expect(masked.personal).toMatchObject({ subjectId: 'alice', alg: 'HPKE-X25519-SHA256-EXPORT-A256GCM', kid: expect.any(String), enc: expect.any(String), ct: expect.any(String) });
      // the values themselves, spaced or not: a short pattern such as /4111/ also matched a request id ending in …4111 (failed once in CI)
      for (const value of PROMPT_VALUES) expect(JSON.stringify(rows)).not.toContain(value);
      expect(rows.some((e) => e.data.outcome === 'refused' && e.data.reason === 'budget:agent')).toBe(true);
      // zero retention: the tenant's next calls keep no text, the audit event still counts them
      expect((await router('/v1/router/settings', t.admin, { method: 'PUT', body: { zeroRetention: true } })).status).toBe(200);
      const reply = await router('/v1/chat/completions', t.bot, { method: 'POST', body: { model: 'local', messages: [{ role: 'user', content: 'forget me please' }] } });
      expect(reply.status).toBe(200);
      const requestId = reply.headers['x-palisade-request-id'];
      const forgotten = await eventually(async () => (await db.query(`SELECT envelope FROM palisade.events WHERE stream_id = $1`, [`model-call-${requestId}`])).rows[0]?.envelope, 5000);
      expect(forgotten.data).toMatchObject({ outcome: 'served', model: 'local' });
      expect(forgotten.personal).toBeUndefined();
      expect(JSON.stringify(forgotten)).not.toContain('forget me');
      // the durable settlement billing's metering reads (llm-router.usage.recorded, stream usage-<requestId>)
      const usage = await eventually(async () => (await db.query(`SELECT envelope FROM palisade.events WHERE stream_id = $1`, [`usage-${requestId}`])).rows[0]?.envelope, 5000);
      expect(usage).toMatchObject({ type: 'llm-router.usage.recorded', tenantId: tenant, data: { requestId, agentId: 'release-bot', model: 'local' } });
      expect(usage.data.actualMicros).toMatch(/^\d+$/);
    } finally {
      await db.end();
    }
  });

  it('raises the class by the tenant’s rules: a team rule sends the team’s requests to the private provider only, a lower rule never lowers, the audit event names the rule', async () => {
    const ledgerBot = await issuerToken({ sub: 'ledger-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' }, teams: ['finance'] });
    // validated at the edge, naming the problem; agents do not administer; another tenant's policy is its own
    const bad = await router('/v1/router/guard-policy', t.admin, { method: 'PUT', body: { classificationRules: [{ team: 'finance', atLeast: 'secret' }] } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('classificationRules.0.atLeast');
    expect((await router('/v1/router/guard-policy', t.bot, { method: 'PUT', body: { classificationRules: [{ team: 'finance', atLeast: 'internal' }] } })).status).toBe(403);
    const current = await router('/v1/router/guard-policy', t.admin);
    const rules = [{ model: 'default', atLeast: 'internal' }, { team: 'finance', atLeast: 'confidential' }];
    const set = await router('/v1/router/guard-policy', t.admin, { method: 'PUT', body: { classificationRules: rules }, headers: { 'if-match': String(current.headers.etag) } });
    expect(set.status).toBe(200);
    expect(set.json.classificationRules).toEqual(rules);
    expect((await router('/v1/router/guard-policy', t.otherAdmin)).json.classificationRules).toBeUndefined();

    // the finance agent's plain request (declared internal) is confidential: the route's external first candidate gets nothing
    const { data: completion, response } = await eventually(async () => {
      cloud.records.length = 0;
      onprem.records.length = 0;
      const r = await openai(ledgerBot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Quarterly figures, please' }] }).withResponse();
      return onprem.records.length === 1 ? r : undefined;
    }, 5000);
    expect(completion.choices[0].message.content).toContain('Quarterly figures');
    expect(cloud.records).toHaveLength(0);
    expect(onprem.records).toHaveLength(1);
    // release-bot (no team) is not raised: the external candidate serves it
    await openai(t.bot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Public note' }] });
    expect(cloud.records).toHaveLength(1);
    // declared restricted, rules at internal and confidential: still restricted
    const { response: restricted } = await openai(ledgerBot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Board minutes' }] }, { headers: { 'X-Palisade-Classification': 'restricted' } }).withResponse();
    expect(cloud.records).toHaveLength(1);

    const db = owner();
    await db.connect();
    try {
      const eventOf = (requestId: string | null) => eventually(async () => (await db.query(`SELECT envelope FROM palisade.events WHERE stream_id = $1`, [`model-call-${requestId}`])).rows[0]?.envelope.data, 5000);
      expect(await eventOf(response.headers.get('x-palisade-request-id'))).toMatchObject({
        agentId: 'ledger-bot',
        providerId: 'onprem',
        classification: 'confidential',
        guards: { classification: { declared: 'internal', rules: [{ index: 1, team: 'finance', atLeast: 'confidential' }] } },
      });
      const kept = await eventOf(restricted.headers.get('x-palisade-request-id'));
      expect(kept).toMatchObject({ classification: 'restricted', providerId: 'onprem' });
      expect(kept.guards.classification).toBeUndefined();

      // a rule on a model applies when the route's candidate is that model: gpt (external) made confidential is skipped
      const before = await router('/v1/router/guard-policy', t.admin);
      const onModel = await router('/v1/router/guard-policy', t.admin, { method: 'PUT', body: { classificationRules: [...rules, { model: 'gpt', atLeast: 'confidential' }] }, headers: { 'if-match': String(before.headers.etag) } });
      expect(onModel.status).toBe(200);
      const skipped = await eventually(async () => {
        cloud.records.length = 0;
        onprem.records.length = 0;
        const r = await openai(t.bot).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Public note' }] }).withResponse();
        return onprem.records.length === 1 ? r : undefined;
      }, 5000);
      expect(cloud.records).toHaveLength(0);
      expect(await eventOf(skipped.response.headers.get('x-palisade-request-id'))).toMatchObject({ agentId: 'release-bot', providerId: 'onprem', model: 'local', classification: 'internal' });
      const back = await router('/v1/router/guard-policy', t.admin, { method: 'PUT', body: { classificationRules: rules }, headers: { 'if-match': String(onModel.headers.etag) } });
      expect(back.status).toBe(200);
    } finally {
      await db.end();
    }
  });
});
