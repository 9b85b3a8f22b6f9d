import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { audienceOf } from '@palisade/auth-verifier';
import { PalisadeError } from '@palisade/contracts';
import { connectNats, serveRpc } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, httpsCaller, infra, queryServiceDatabase, startSealPersonalStandIn, TestTokenIssuer } from '@palisade/testing';
import { startStandIn, type StandIn } from './support/provider-standin';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { seedDemoRouter } = require('../../../scripts/seed-demo.js');

// Providers behind the router: keys kept in the credential service's vault and read
// through its audited path. The built credential, billing and llm-router services (offset
// 9970: 17073, 17077, 17076), the vault on its default schema and master key (any
// credential instance on the shared NATS answering in its queue group reads the same
// rows), provider stand-ins that require a key, the official SDKs as callers.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 9970;
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a real auth service on the shared
// NATS would otherwise answer, in its queue group, the API key this suite's auth stand-in knows; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = 'e2e9970';
const ROUTER = 7106 + OFFSET;
const BILLING = 7107 + OFFSET;
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'llm-router-providers-e2e');
const tenant = `p-${randomBytes(4).toString('hex')}`;

const db = <T>(service: 'llm-router' | 'credential', sql: string, params: unknown[]) => queryServiceDatabase<T>(service, sql, params);
const vaultEvents = (type: string) =>
  db<{ envelope: { actor: { type: string; id: string }; data: Record<string, unknown> } }>('credential', `SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND event_type = $2 ORDER BY global_position`, [tenant, type]).then((rows) => rows.map((r) => r.envelope));

describe('llm-router providers (vault keys, official SDKs)', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  /** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
  let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
  let keyed: StandIn;
  let plain: StandIn;
  const t: Record<string, string> = {};
  const key1 = `sk-test-${randomBytes(16).toString('hex')}`;
  const key2 = `sk-test-${randomBytes(16).toString('hex')}`;
  const router = (path: string, token: string, options: Parameters<ReturnType<typeof httpsCaller>>[1] = {}) => httpsCaller(ROUTER)(path, { token, ...options });
  const put = (path: string, body: object) => router(path, t.admin, { method: 'PUT', body });
  const openai = () => new OpenAI({ apiKey: t.bot, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
  const anthropic = () => new Anthropic({ authToken: t.bot, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 });

  beforeAll(async () => {
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
    [keyed, plain] = await Promise.all([startStandIn(0, key1), startStandIn()]);
    const issuer = await TestTokenIssuer.create(audienceOf('llm-router'));
    const billingIssuer = await TestTokenIssuer.create(audienceOf('billing'));
    const jwks = JSON.stringify({ keys: [issuer, billingIssuer].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
    sealing = await startSealPersonalStandIn();
    handles = runner.startServices({ services: ['credential', 'billing', 'llm-router'], portOffset: OFFSET, logDir: LOG_DIR, env: { AUTH_JWKS: jwks, LOG_LEVEL: 'debug' } });
    t.billingAdmin = await billingIssuer.token({ sub: 'alice', tid: tenant, ptp: 'user', scp: ['auth:admin'] });
    t.admin = await issuer.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['llm-router:admin'] });
    t.bot = await issuer.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.bob = await issuer.token({ sub: 'bob', tid: tenant, ptp: 'user' });
    t.bobsBot = await issuer.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'bob' } });
    t.limitedBot = await issuer.token({ sub: 'limited-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.keyBotA = await issuer.token({ sub: 'key-bot-a', tid: tenant, ptp: 'agent', act: { sub: 'alice' }, sid: 'apikey-k9' });
    t.keyBotB = await issuer.token({ sub: 'key-bot-b', tid: tenant, ptp: 'agent', act: { sub: 'alice' }, sid: 'apikey-k9' });
    await runner.waitReady(handles, { timeoutMs: 90000 });
    expect((await httpsCaller(BILLING)('/v1/budgets/agent/release-bot', { token: t.billingAdmin, method: 'PUT', body: { limitMicros: '1000000000', period: 'day', timeZone: 'UTC' } })).status).toBe(200);
  }, 150000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await sealing?.stop();
    await Promise.all([keyed?.close(), plain?.close()]);
  });

  beforeEach(() => {
    keyed.records.length = 0;
    plain.records.length = 0;
  });

  it("keeps a provider's API key in the vault: stored write-only, read through the vault's audited path, sent only to the provider, never in the catalog, events or logs", async () => {
    const registered = await put('/v1/router/providers/cloud', { kind: 'openai', baseUrl: `${keyed.url}/v1`, compliance: 'external', apiKey: key1 });
    expect(registered.status).toBe(200);
    expect(registered.body).not.toContain(key1);
    const secretId = registered.json.providers.cloud.apiKeySecretId as string;
    expect(secretId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await put('/v1/router/models/gpt', { providerId: 'cloud', upstreamModel: 'gpt-cloud', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 1000000, outputMicrosPerMTok: 1000000 })).status).toBe(200);
    // the same key for an Anthropic-kind provider, by reference: sent as x-api-key
    expect((await put('/v1/router/providers/claude', { kind: 'anthropic', baseUrl: `${keyed.url}/v1`, compliance: 'external', apiKeySecretId: secretId })).status).toBe(200);
    expect((await put('/v1/router/models/claude', { providerId: 'claude', upstreamModel: 'claude-cloud', contextWindow: 200000, maxOutputTokens: 4096, inputMicrosPerMTok: 1000000, outputMicrosPerMTok: 1000000 })).status).toBe(200);

    const completion = await openai().chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'Say hi' }] });
    expect(completion.choices[0].message.content).toBe('echo: Say hi naïve café — 数据 ✓');
    expect(keyed.records.at(-1)?.headers.authorization).toBe(`Bearer ${key1}`);
    const message = await anthropic().messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'Hello' }] });
    expect(message.content).toEqual([{ type: 'text', text: 'echo: Hello naïve café — 数据 ✓' }]);
    expect(keyed.records.at(-1)?.headers['x-api-key']).toBe(key1);
    expect(keyed.records.at(-1)?.headers.authorization).toBeUndefined();

    // the vault stored it under the router's scope and recorded the read (consumer llm-router, purpose provider-call)
    const created = await vaultEvents('credential.secret.created');
    expect(created).toEqual([expect.objectContaining({ actor: { type: 'service', id: 'llm-router' }, data: expect.objectContaining({ secretId, name: 'llm-provider.cloud', scopes: ['llm-router:provider-key'] }) })]);
    const reads = await eventually(async () => ((await vaultEvents('credential.secret.read')).length > 0 ? vaultEvents('credential.secret.read') : undefined), 5000);
    expect(reads[0]).toMatchObject({ actor: { type: 'service', id: 'llm-router' }, data: { secretId, consumer: 'llm-router', purpose: 'provider-call' } });

    // nowhere else: the catalog, the router's events, its logs
    expect((await router('/v1/router/catalog', t.admin)).body).not.toContain(key1);
    const events = await db<{ envelope: object }>('llm-router', `SELECT envelope FROM palisade.events WHERE tenant_id = $1`, [tenant]);
    expect(events.length).toBeGreaterThan(3);
    expect(JSON.stringify(events)).not.toContain(key1);
    const logs = readdirSync(LOG_DIR).map((f) => readFileSync(join(LOG_DIR, f), 'utf8')).join('\n');
    expect(logs).not.toContain(key1);
  });

  it("rotates the key through the same secret (the next call sends the new one), refuses a reference that is not the tenant's router key (503, nothing sent), and removes an unused key from the vault", async () => {
    keyed.requiredKey = key2;
    expect((await put('/v1/router/providers/cloud', { kind: 'openai', baseUrl: `${keyed.url}/v1`, compliance: 'external', apiKey: key2 })).status).toBe(200);
    await openai().chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'after rotation' }] });
    expect(keyed.records.at(-1)?.headers.authorization).toBe(`Bearer ${key2}`);

    // a secret id the vault does not hold for this tenant under the router's scope: refused before anything is sent
    keyed.records.length = 0;
    expect((await put('/v1/router/providers/claude', { kind: 'anthropic', baseUrl: `${keyed.url}/v1`, compliance: 'external', apiKeySecretId: randomUUID() })).status).toBe(200);
    const refused = await anthropic()
      .messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 'Hello' }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.APIError);
    expect((refused as InstanceType<typeof Anthropic.APIError>).status).toBe(503);
    expect(String((refused as Error).message)).toContain('the key of provider claude could not be read from the vault (not_found)');
    expect(keyed.records).toHaveLength(0);

    // a key the provider refuses is the router's problem (503), not the caller's (400)
    keyed.requiredKey = 'a-key-the-vault-does-not-hold';
    const wrong = await openai()
      .chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect((wrong as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    keyed.requiredKey = key2;

    // removing the provider (its model first) shreds the key no provider references any more
    const secretId = ((await router('/v1/router/catalog', t.admin)).json.providers.cloud as { apiKeySecretId: string }).apiKeySecretId;
    expect((await router('/v1/router/models/gpt', t.admin, { method: 'DELETE' })).status).toBe(200);
    expect((await router('/v1/router/providers/cloud', t.admin, { method: 'DELETE' })).status).toBe(200);
    const shredded = await eventually(async () => (await vaultEvents('credential.secret.shredded')).find((e) => e.data.secretId === secretId), 5000);
    expect(shredded).toMatchObject({ actor: { type: 'service', id: 'llm-router' } });
  });

  it('streams across protocols with the official SDKs: OpenAI from an Anthropic provider and Anthropic from an OpenAI-compatible one, an e-mail masked and back, stop reasons, usage with cache tokens settled once', async () => {
    // (streamed tool calls across protocols are proven by the golden unit tests: here the policy service, which allows tools, is not running)
    for (const [path, body] of [
      ['/v1/router/providers/a-onprem', { kind: 'anthropic', baseUrl: `${plain.url}/v1`, compliance: 'private' }],
      ['/v1/router/providers/o-onprem', { kind: 'openai', baseUrl: `${plain.url}/v1`, compliance: 'private' }],
      ['/v1/router/models/a-cached', { providerId: 'a-onprem', upstreamModel: 'cached', contextWindow: 200000, maxOutputTokens: 4096, inputMicrosPerMTok: 3000000, outputMicrosPerMTok: 15000000 }],
      ['/v1/router/models/o-cached', { providerId: 'o-onprem', upstreamModel: 'cached', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 1000000, outputMicrosPerMTok: 2000000 }],
    ] as const) expect((await put(path, body)).status).toBe(200);

    // the OpenAI SDK, streaming, from the Anthropic-kind provider
    const stream = openai().chat.completions.stream({ model: 'a-cached', stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Zürich, mail eve@example.com' }] });
    const completion = await stream.finalChatCompletion();
    expect(plain.records[0].path).toBe('/v1/messages');
    expect(JSON.parse(plain.records[0].body)).toMatchObject({ model: 'cached', stream: true });
    expect(plain.records[0].body).not.toContain('eve@example.com');
    expect(completion.choices[0].message.content).toBe('echo: Zürich, mail eve@example.com naïve café — 数据 ✓');
    expect(completion.choices[0].finish_reason).toBe('stop');
    expect(completion.usage).toMatchObject({ prompt_tokens_details: { cached_tokens: 7 } });
    expect(completion.model).toBe('a-cached');

    // the Anthropic SDK, streaming, from the OpenAI-compatible provider
    const message = await anthropic()
      .messages.stream({ model: 'o-cached', max_tokens: 300, messages: [{ role: 'user', content: 'Genève, mail eve@example.com' }] })
      .finalMessage();
    expect(plain.records[1].path).toBe('/v1/chat/completions');
    expect(JSON.parse(plain.records[1].body)).toMatchObject({ model: 'cached', stream: true, stream_options: { include_usage: true } });
    expect(plain.records[1].body).not.toContain('eve@example.com');
    expect(message.content).toEqual([{ type: 'text', text: 'echo: Genève, mail eve@example.com naïve café — 数据 ✓' }]);
    expect(message.stop_reason).toBe('end_turn');
    expect(message.model).toBe('o-cached');
    expect(message.usage).toMatchObject({ cache_read_input_tokens: 7, output_tokens: expect.any(Number) });
    expect(message.usage.input_tokens).toBeGreaterThan(0);

    // settled once each, cache tokens in their own lines (Anthropic's 7 read and 3 written; OpenAI's 7 cached)
    const usageOf = (model: string) =>
      db<{ envelope: { data: { usage: Array<{ kind: string; quantity: number }> } } }>('llm-router', `SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.usage.recorded' AND envelope->'data'->>'model' = $2`, [tenant, model]).then((rows) => (rows.length > 0 ? rows.map((r) => r.envelope.data.usage) : undefined));
    expect(await eventually(() => usageOf('a-cached'), 5000)).toEqual([expect.arrayContaining([{ kind: 'cache_read_tokens', quantity: 7 }, { kind: 'cache_write_tokens', quantity: 3 }])]);
    const openAiSide = await eventually(() => usageOf('o-cached'), 5000);
    expect(openAiSide).toEqual([expect.arrayContaining([{ kind: 'cache_read_tokens', quantity: 7 }, { kind: 'output_tokens', quantity: message.usage.output_tokens }])]);
    expect(openAiSide[0].some((u) => u.kind === 'estimated')).toBe(false);
  });

  it("charges the user an agent acts for: the user's budget in billing applies (429 naming the user level), and a person calling directly too", async () => {
    // bob's own budget (billing remembers budgets for a while: a user no other test uses)
    expect((await httpsCaller(BILLING)('/v1/budgets/user/bob', { token: t.billingAdmin, method: 'PUT', body: { limitMicros: '10', period: 'day', timeZone: 'UTC' } })).status).toBe(200);
    plain.records.length = 0;
    const refused = await new OpenAI({ apiKey: t.bobsBot, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 }).chat.completions
      .create({ model: 'o-cached', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect((refused as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ code: 'budget_exceeded', budget: { level: 'user', limitMicros: 10 } });
    // bob himself, calling directly, meets the same budget
    const asBob = new OpenAI({ apiKey: t.bob, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
    const direct = await asBob.chat.completions.create({ model: 'o-cached', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect((direct as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ budget: { level: 'user' } });
    expect(plain.records).toHaveLength(0);
    // the same agent acting for alice (no user budget of hers) is served
    expect((await openai().chat.completions.create({ model: 'o-cached', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] })).choices).toHaveLength(1);
  });

  it('serves embeddings with the OpenAI SDK: inputs masked before the provider, the class raised to the private one, usage settled, one audit event, Anthropic-only models refused', async () => {
    expect((await put('/v1/router/providers/cloud-e', { kind: 'openai', baseUrl: `${plain.url}/v1`, compliance: 'external' })).status).toBe(200);
    expect((await put('/v1/router/models/embed-cloud', { providerId: 'cloud-e', upstreamModel: 'text-embedding-cloud', contextWindow: 8192, maxOutputTokens: 1, inputMicrosPerMTok: 20000, outputMicrosPerMTok: 0 })).status).toBe(200);
    expect((await put('/v1/router/models/embed-local', { providerId: 'o-onprem', upstreamModel: 'bge-local', contextWindow: 8192, maxOutputTokens: 1, inputMicrosPerMTok: 10000, outputMicrosPerMTok: 0 })).status).toBe(200);
    expect((await put('/v1/router/routes/embed', { candidates: ['embed-cloud', 'embed-local'] })).status).toBe(200);

    const plainText = await openai().embeddings.create({ model: 'embed', input: 'quarterly report' });
    expect(plainText.data).toHaveLength(1);
    expect(plainText.model).toBe('embed');
    expect(JSON.parse(plain.records[0].body)).toMatchObject({ model: 'text-embedding-cloud', input: 'quarterly report' });

    const personal = await openai().embeddings.create({ model: 'embed', input: ['contract with grace@example.org', 'second document'] });
    expect(personal.data.map((d) => d.index)).toEqual([0, 1]);
    expect(personal.usage.prompt_tokens).toBeGreaterThan(0);
    // the e-mail made it confidential: the private provider, masked
    expect(plain.records[1].path).toBe('/v1/embeddings');
    expect(JSON.parse(plain.records[1].body)).toMatchObject({ model: 'bge-local', input: ['contract with ⟦EMAIL_1⟧', 'second document'] });
    expect(plain.records[1].body).not.toContain('grace@example.org');

    const usage = await eventually(async () => {
      const rows = await db<{ envelope: { data: { usage: Array<{ kind: string; quantity: number }> } } }>('llm-router', `SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.usage.recorded' AND envelope->'data'->>'model' = 'embed-local'`, [tenant]);
      return rows[0]?.envelope.data.usage;
    }, 5000);
    expect(usage).toEqual([{ kind: 'input_tokens', quantity: personal.usage.prompt_tokens }, { kind: 'output_tokens', quantity: 0 }]);
    const audited = await eventually(async () => {
      const rows = await db<{ envelope: { data: Record<string, unknown> } }>('llm-router', `SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.model-call.recorded' AND envelope->'data'->>'model' = 'embed-local'`, [tenant]);
      return rows[0]?.envelope.data;
    }, 5000);
    expect(audited).toMatchObject({ operation: 'embeddings', requestedModel: 'embed', classification: 'confidential', outcome: 'served', outputTokens: 0 });

    plain.records.length = 0;
    const refused = await openai()
      .embeddings.create({ model: 'a-cached', input: 'x' })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    const tokens = await router('/v1/embeddings', t.bot, { method: 'POST', body: { model: 'embed', input: [[1, 2, 3]] } });
    expect(tokens.status).toBe(400);
    expect(tokens.json.error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('input') });
    expect(plain.records).toHaveLength(0);
  });

  it('routes by weight: a route’s weights are stored with it, the draw spreads first attempts, bad weights are 400', async () => {
    expect((await put('/v1/router/providers/w-onprem', { kind: 'openai', baseUrl: `${plain.url}/v1`, compliance: 'private' })).status).toBe(200);
    for (const id of ['w-a', 'w-b']) expect((await put(`/v1/router/models/${id}`, { providerId: 'w-onprem', upstreamModel: id, contextWindow: 8000, maxOutputTokens: 100, inputMicrosPerMTok: 1, outputMicrosPerMTok: 1 })).status).toBe(200);
    expect((await put('/v1/router/routes/weighted', { candidates: ['w-a', 'w-b'], weights: [1, 1] })).status).toBe(200);
    expect((await router('/v1/router/catalog', t.admin)).json.routes.weighted).toEqual({ routeId: 'weighted', candidates: ['w-a', 'w-b'], weights: [1, 1] });
    expect((await put('/v1/router/routes/weighted', { candidates: ['w-a', 'w-b'], weights: [1] })).status).toBe(400);
    plain.records.length = 0;
    for (let i = 0; i < 24; i++) await openai().chat.completions.create({ model: 'weighted', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    const served = new Set(plain.records.map((r) => JSON.parse(r.body).model as string));
    // 24 draws at 1:1 all landing on one model: 2^-23
    expect(served).toEqual(new Set(['w-a', 'w-b']));
  });

  it('npm start’s demo model: the provider stand-in run as a process as npm start runs it, registered by its seed as a private model behind route default; the README’s curl and OpenAI SDK calls', async () => {
    const standIn = spawn(process.execPath, ['--no-warnings', join(__dirname, 'support', 'provider-standin.ts'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(standIn.stdout!, 'data')) as [Buffer];
      const providerUrl = `${line.toString('utf8').trim()}/v1`;
      await seedDemoRouter({ routerUrl: `https://127.0.0.1:${ROUTER}`, providerUrl, ca: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt')), accessToken: t.admin });
      // as in the README: curl with the development CA …
      const body = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'Refund alice@example.com' }] });
      const out = execFileSync('curl', ['-s', '--cacert', join(infra('PALISADE_PKI_DIR'), 'ca.crt'), `https://localhost:${ROUTER}/v1/chat/completions`, '-H', `authorization: Bearer ${t.bot}`, '-H', 'content-type: application/json', '-d', body], { encoding: 'utf8' });
      expect(JSON.parse(out)).toMatchObject({ object: 'chat.completion', model: 'default', choices: [{ message: { content: 'echo: Refund alice@example.com naïve café — 数据 ✓' } }] });
      // … and the OpenAI SDK
      const answer = await openai().chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'Hello' }] });
      expect(answer.choices[0].message.content).toBe('echo: Hello naïve café — 数据 ✓');
      expect((await openai().models.list()).data.map((m) => m.id)).toEqual(expect.arrayContaining(['default', 'demo-local']));
    } finally {
      standIn.kill();
    }
  });

  it("accepts one of auth's API keys directly, as the bearer (OpenAI SDK) or x-api-key (Anthropic SDK): tenant and agent from the key; a key auth refuses is 401", async () => {
    // auth's verify-api-key answered by this test with auth's NATS identity (queue auth), for one key
    const keyId = randomBytes(12).toString('hex');
    const apiKey = `palisade_${keyId}_${randomBytes(32).toString('base64url')}`;
    const asAuth = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'auth' });
    const nc = await connectNats({ servers: infra('NATS_URL'), identity: asAuth, name: 'e2e-llm-router-api-keys' });
    const asked: string[] = [];
    const server = serveRpc(nc, {
      service: 'auth',
      handlers: {
        'palisade.rpc.auth.verify-api-key': async (payload) => {
          asked.push((payload as { apiKey: string }).apiKey);
          if ((payload as { apiKey: string }).apiKey !== apiKey) throw new PalisadeError('unauthenticated', 'API key is not valid');
          return { type: 'agent', id: 'key-bot', tenantId: tenant, actingFor: 'alice', sessionId: `apikey-${keyId}`, scopes: [] };
        },
      },
    });
    try {
      const viaOpenAi = await new OpenAI({ apiKey, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 }).chat.completions.create({ model: 'o-cached', max_tokens: 20, messages: [{ role: 'user', content: 'with a key' }] });
      expect(viaOpenAi.choices[0].message.content).toContain('with a key');
      const viaAnthropic = await new Anthropic({ apiKey, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 }).messages.create({ model: 'o-cached', max_tokens: 20, messages: [{ role: 'user', content: 'x-api-key' }] });
      expect(viaAnthropic.content).toEqual([{ type: 'text', text: 'echo: x-api-key naïve café — 数据 ✓' }]);
      expect(asked).toEqual([apiKey, apiKey]);
      // the calls are the key's agent's, in the key's tenant
      const calls = await eventually(async () => {
        const rows = await db<{ envelope: { data: { agentId?: string; userId?: string; outcome: string } } }>('llm-router', `SELECT envelope FROM palisade.events WHERE tenant_id = $1 AND envelope->>'type' = 'llm-router.model-call.recorded' AND envelope->'data'->>'agentId' = 'key-bot'`, [tenant]);
        return rows.length === 2 ? rows.map((r) => r.envelope.data) : undefined;
      }, 5000);
      expect(calls).toEqual([expect.objectContaining({ userId: 'alice', outcome: 'served' }), expect.objectContaining({ userId: 'alice', outcome: 'served' })]);
      // a key auth does not know: 401 in each API's shape, nothing sent
      plain.records.length = 0;
      const forged = `palisade_${keyId}_${randomBytes(32).toString('base64url')}`;
      const refused = await new OpenAI({ apiKey: forged, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 }).models.list().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
      const refusedAnthropic = await new Anthropic({ apiKey: forged, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 }).messages.create({ model: 'o-cached', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      expect(refusedAnthropic).toBeInstanceOf(Anthropic.AuthenticationError);
      expect(plain.records).toHaveLength(0);
    } finally {
      await server.stop();
      await nc.close();
      asAuth.stop();
    }
  });

  it('limits requests per agent and per API key across calls, with 429 in each API’s shape and retry-after', async () => {
    // (last: the tenant's settings change) two requests a minute per agent, one per API key
    expect((await router('/v1/router/settings', t.admin, { method: 'PUT', body: { zeroRetention: false, rateLimits: { perAgent: { requestsPerMinute: 2 }, perKey: { requestsPerMinute: 1 } } } })).status).toBe(200);
    const limitedBot = new OpenAI({ apiKey: t.limitedBot, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
    const ask = (client: OpenAI) => client.chat.completions.create({ model: 'o-cached', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
    await ask(limitedBot);
    await ask(limitedBot);
    plain.records.length = 0;
    const third = await ask(limitedBot).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(OpenAI.RateLimitError);
    const error = third as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded', rate_limit: { scope: 'agent', kind: 'requests', limitPerMinute: 2 } });
    expect(Number(error.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const viaAnthropic = await new Anthropic({ authToken: t.limitedBot, baseURL: `https://localhost:${ROUTER}`, maxRetries: 0 }).messages.create({ model: 'o-cached', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(viaAnthropic).toBeInstanceOf(Anthropic.RateLimitError);
    expect((viaAnthropic as InstanceType<typeof Anthropic.RateLimitError>).error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
    expect(plain.records).toHaveLength(0);
    // one API key used by two agents: its own limit of one a minute
    const keyA = new OpenAI({ apiKey: t.keyBotA, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
    const keyB = new OpenAI({ apiKey: t.keyBotB, baseURL: `https://localhost:${ROUTER}/v1`, maxRetries: 0 });
    await ask(keyA);
    const sameKey = await ask(keyB).catch((e: unknown) => e);
    expect((sameKey as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ rate_limit: { scope: 'key', limitPerMinute: 1 } });
    // the agent named with a limit of its own (three a minute, one more than it used): the change holds from the next call
    const named = { perAgent: { requestsPerMinute: 2 }, perKey: { requestsPerMinute: 1 }, agents: { 'limited-bot': { requestsPerMinute: 3 } } };
    expect((await router('/v1/router/settings', t.admin, { method: 'PUT', body: { zeroRetention: false, rateLimits: named } })).status).toBe(200);
    await ask(limitedBot);
    const fourth = await ask(limitedBot).catch((e: unknown) => e);
    expect((fourth as InstanceType<typeof OpenAI.RateLimitError>).error).toMatchObject({ rate_limit: { scope: 'agent', limitPerMinute: 3 } });
    // an id that is none: 400 naming it
    const bad = await router('/v1/router/settings', t.admin, { method: 'PUT', body: { zeroRetention: false, rateLimits: { agents: { 'limited bot': {} } } } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('rateLimits.agents');
  });
});
