import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import OpenAI from 'openai';
import { decodeJwt } from 'jose';
import { EVENTS_STREAM, SERVICE_NAMES, type ServiceName } from '@palisade/contracts';
import { kafkaClient } from '@palisade/kafka';
import { connectNats } from '@palisade/nats';
import { issueCertificate, loadCa, ServiceIdentity } from '@palisade/pki';
import { createTestSchema, eventually, httpsCaller, infra, type CallOptions, type Reply, TEST_APP_ROLE, TEST_DATABASE, TEST_OWNER, type TestSchema } from '@palisade/testing';
import { startStandIn, type StandIn } from '../services/llm-router/test/support/provider-standin';

// One agent's day (/work/shared/design/agent-path.md, issue 16), end to end over the public
// APIs: the seven built services as processes on the real infrastructure (PostgreSQL, TLS
// NATS with JetStream, Kafka, crun), each in a throw-away schema, at port offset 9500
// (auth 16601 … billing 16607). Tokens are the auth service's own: people sign in, the
// agent exchanges its key. Tenant `acme-…` lives the day; tenant `rival-…` must see none of it.
// Nothing is timed: asynchronous effects are awaited with `eventually`.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../scripts/platform-runner.js');
const OFFSET = 9500;
const port = (service: ServiceName) => runner.SERVICES[service] + OFFSET;
const suffix = randomBytes(3).toString('hex');
const OPS = `ops-${suffix}`; // the platform operator's tenant (bootstrap)
const ACME = `acme-${suffix}`;
const RIVAL = `rival-${suffix}`;
const PASSWORD = `Day-${randomBytes(9).toString('base64url')}-7x!`;
const INSTANCE = `day${suffix}`; // the orchestrator's containers, cgroups and network namespaces
const AUDIT_TOPIC = `palisade.audit.e2eday.${suffix}`;
const GERRIT_TOKEN = `gerrit-secret-${randomBytes(12).toString('hex')}`;
const EMAIL = 'erika.mustermann@example.com';
const IBAN = 'DE89 3704 0044 0532 0130 00';
const CARD = '4111 1111 1111 1111';

jest.setTimeout(120_000);

type Handle = { name: string; port: number; stop(): Promise<unknown> };

describe("one agent's day (seven services, two tenants)", () => {
  const workDir = mkdtempSync(join(tmpdir(), 'palisade-agent-day-'));
  const schemas = new Map<ServiceName, TestSchema>();
  let handles: Handle[] = [];
  let admin: ServiceIdentity;
  let onprem: StandIn;
  let cloud: StandIn;
  let gerrit: Server;
  const gerritSeen: Array<{ path?: string; authorization?: string }> = [];
  let gerritPort = 0;
  let devCa = '';

  // what the day creates, shared between the steps
  const tok: Record<string, string> = {};
  const id: Record<string, string> = {};
  let agentKey = '';
  const since = new Date(Date.now() - 60_000).toISOString();

  const call = (service: ServiceName, path: string, token: string | undefined, options: CallOptions = {}): Promise<Reply> =>
    httpsCaller(port(service))(path, { token, timeoutMs: 60_000, ...options });
  const ok = async (reply: Promise<Reply>, status = [200, 201, 204]): Promise<Reply> => {
    const r = await reply;
    if (!status.includes(r.status)) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    return r;
  };
  /**
   * A call that needs a policy decision asked over NATS (credential, sandbox-orchestrator), repeated
   * until it gives `status`: the policy service may still be applying the rules just written, and
   * on the shared NATS every policy instance of a concurrently running suite is in the queue group
   * `policy` too; its denial for a tenant it does not know stays in the asking service's decision
   * cache for up to 30 s (README.md, "One agent's day").
   */
  const settled = (request: () => Promise<Reply>, status = 200): Promise<Reply> =>
    eventually(async () => {
      const r = await request();
      return r.status === status ? r : undefined;
    }, 75_000, 500);
  const signIn = async (tenant: string, username: string): Promise<string> =>
    (await ok(call('auth', `/v1/tenants/${tenant}/sign-in`, undefined, { method: 'POST', body: { username, password: PASSWORD } }))).json.accessToken;
  const agentToken = async (): Promise<string> => (await ok(call('auth', '/v1/tokens/agent', undefined, { method: 'POST', body: { apiKey: agentKey } }))).json.accessToken;
  const openai = (token: string) => new OpenAI({ apiKey: token, baseURL: `https://localhost:${port('llm-router')}/v1`, maxRetries: 0 });
  const budgetStatus = async () => (await ok(call('billing', `/v1/budgets/agent/${id.agent}`, tok.admin))).json;

  beforeAll(async () => {
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8')]);
    admin = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    await deleteAuditDurable();
    // two model providers that speak OpenAI's protocol and record what reaches them
    [onprem, cloud] = await Promise.all([startStandIn(), startStandIn()]);
    // the stand-in for Gerrit: HTTPS with a certificate of the development CA; records what it receives
    const ca = await loadCa(infra('PALISADE_PKI_DIR'));
    const cert = await issueCertificate(ca, { kind: 'server', name: 'gerrit-stand-in', dns: ['gerrit.acme.test'] });
    devCa = cert.caPem;
    gerrit = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      gerritSeen.push({ path: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ changes: [{ id: 'I8473b95934', subject: 'release 4.2' }] }));
    });
    await new Promise<void>((resolve) => gerrit.listen(0, '127.0.0.1', resolve));
    gerritPort = (gerrit.address() as AddressInfo).port;

    for (const service of SERVICE_NAMES) schemas.set(service, await createTestSchema('day'));
    const tokenFile = join(workDir, 'bootstrap.token');
    writeFileSync(tokenFile, randomBytes(32).toString('base64url'), { mode: 0o600 });
    const envFor: Partial<Record<ServiceName, Record<string, string>>> = {
      auth: { AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile, AUTH_OPERATOR_TENANT: OPS, AUTH_ADDRESS_LOCKOUT_THRESHOLD: '10000' },
      credential: { CREDENTIAL_ACCESS_POLICY: 'policy' },
      audit: {
        AUDIT_TOPIC,
        AUDIT_CHECKPOINT_TOPIC: `${AUDIT_TOPIC}.checkpoints`,
        AUDIT_CONSUMER: 'e2eday',
        AUDIT_DELIVER_POLICY: 'new',
        AUDIT_KEK_FILE: join(workDir, 'audit-kek.key'),
      },
    };
    // the orchestrator starts in step 1, once the vault holds the secret its egress rule names
    handles = start(SERVICE_NAMES.filter((s) => s !== 'sandbox-orchestrator'), envFor);
    await runner.waitReady(handles, { timeoutMs: 120_000 });

    // the platform operator (bootstrap) provisions the two tenants; its auditor verifies the chain
    const bootstrap = await call('auth', '/v1/bootstrap', undefined, {
      method: 'POST',
      headers: { authorization: `Bootstrap ${readFileSync(tokenFile, 'utf8')}` },
      body: { tenantId: OPS, tenantName: 'Operations', admin: { username: 'operator', password: PASSWORD } },
    });
    expect(bootstrap.status).toBe(201);
    tok.operator = await signIn(OPS, 'operator');
    for (const [tenantId, name] of [[ACME, 'Acme'], [RIVAL, 'Rival']]) {
      await ok(call('auth', '/v1/tenants', tok.operator, { method: 'POST', body: { tenantId, name, admin: { username: 'security-admin', password: PASSWORD } } }));
    }
    const opsAuditor = await ok(call('auth', '/v1/users', tok.operator, { method: 'POST', body: { username: 'platform-auditor', password: PASSWORD, roles: ['member'] } }));
    await ok(call('auth', `/v1/users/${opsAuditor.json.userId}/platform-auditor`, tok.operator, { method: 'PUT', body: { granted: true } }));
    tok.platformAuditor = await signIn(OPS, 'platform-auditor');
  }, 240_000);

  function start(services: ServiceName[], envFor: Partial<Record<ServiceName, Record<string, string>>>): Handle[] {
    return runner.startServices({
      services,
      portOffset: OFFSET,
      env: { LOG_LEVEL: 'warn', PGDATABASE: TEST_DATABASE, PGUSER: TEST_APP_ROLE, PG_MIGRATION_USER: TEST_OWNER },
      envFor: (service: ServiceName) => ({ PG_SCHEMA: schemas.get(service)!.schema, ...envFor[service] }),
      logDir: join(infra('PALISADE_HOME'), 'logs', 'e2e-agent-day'),
    });
  }

  async function deleteAuditDurable(): Promise<void> {
    const nc = await connectNats({ servers: infra('NATS_URL'), identity: admin, name: 'e2e-agent-day' });
    try {
      await (await nc.jetstreamManager()).consumers.delete(EVENTS_STREAM, 'audit-e2eday').catch(() => undefined);
    } finally {
      await nc.drain();
    }
  }

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await Promise.all([onprem?.close(), cloud?.close(), new Promise((r) => (gerrit ? gerrit.close(r) : r(undefined)))]);
    await deleteAuditDurable().catch(() => undefined);
    const kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity: admin, clientId: 'e2e-agent-day', logLevel: 'nothing' as never });
    const kadmin = kafka.admin();
    await kadmin.connect();
    await kadmin.deleteTopics({ topics: [AUDIT_TOPIC, `${AUDIT_TOPIC}.checkpoints`] }).catch(() => undefined);
    await kadmin.disconnect();
    admin?.stop();
    for (const schema of schemas.values()) await schema.drop();
  }, 60_000);

  it('1. people set the day up through the public APIs: team, agent, tools, vault, egress rule, budgets, prices, models', async () => {
    tok.admin = await signIn(ACME, 'security-admin');
    tok.rivalAdmin = await signIn(RIVAL, 'security-admin');
    const adminId = decodeJwt(tok.admin).sub!;
    // people: alice (the agent's owner), carol (approves payments), audrey (the tenant's auditor)
    for (const [name, roles] of [['alice', ['member']], ['carol', ['member']], ['audrey', ['auditor']]] as const) {
      id[name] = (await ok(call('auth', '/v1/users', tok.admin, { method: 'POST', body: { username: name, password: PASSWORD, roles } }))).json.userId;
    }
    await ok(call('auth', '/v1/users', tok.rivalAdmin, { method: 'POST', body: { username: 'rita', password: PASSWORD, roles: ['auditor'] } }));
    await ok(call('auth', '/v1/teams', tok.admin, { method: 'POST', body: { teamId: 'platform', name: 'Platform' } }));
    await ok(call('auth', `/v1/teams/platform/members/${id.alice}`, tok.admin, { method: 'PUT' }));
    const agent = await ok(call('auth', '/v1/agents', tok.admin, { method: 'POST', body: { name: 'release-bot', teamId: 'platform', ownerId: id.alice } }));
    expect(agent.json).toMatchObject({ name: 'release-bot', ownerId: id.alice, teamId: 'platform', status: 'active' });
    id.agent = agent.json.agentId;
    const key = await ok(call('auth', `/v1/agents/${id.agent}/keys`, tok.admin, { method: 'POST', body: { name: 'ci', scopes: [] } }));
    agentKey = key.json.apiKey;
    for (const name of ['alice', 'carol', 'audrey']) tok[name] = await signIn(ACME, name);
    tok.rivalAuditor = await signIn(RIVAL, 'rita');

    // policy: who runs tools and pays (alice and her agent), who approves payments (carol), who keeps the vault (the admin)
    const policy = (method: string, path: string, body: object) => ok(call('policy', path, tok.admin, { method, body }));
    for (const role of ['release-engineer', 'payment-approver', 'secrets-admin']) await policy('PUT', `/v1/roles/${role}`, { inherits: [] });
    await policy('POST', '/v1/assignments', {
      assignments: [
        { subject: `user:${id.alice}`, role: 'release-engineer' },
        { subject: `agent:${id.agent}`, role: 'release-engineer' },
        { subject: `user:${id.carol}`, role: 'payment-approver' },
        // alice holds the approver role too: four eyes across acting-for still keeps her from approving her agent (step 5)
        { subject: `user:${id.alice}`, role: 'payment-approver' },
        { subject: `user:${adminId}`, role: 'secrets-admin' },
      ],
    });
    await policy('PUT', '/v1/policies/agent-day', {
      rules: [
        { id: 'engineers-run-tools', effect: 'allow', subject: 'role:release-engineer', resource: 'tool', action: 'invoke' },
        { id: 'engineers-pay', effect: 'allow', subject: 'role:release-engineer', resource: 'payment', action: 'payments.create' },
        { id: 'approvers-approve', effect: 'allow', subject: 'role:payment-approver', resource: 'approval', action: 'approve' },
        { id: 'admin-creates-secrets', effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: 'credential.create' },
        { id: 'admin-reads-secrets', effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: 'credential.read' },
      ],
    });
    await policy('PUT', '/v1/tools', { tools: ['gerrit.query', 'execute_code', 'payments.create'] });
    await policy('PUT', `/v1/agents/${id.agent}/tools`, { tools: ['gerrit.query', 'execute_code', 'payments.create'] });

    // the vault: the Gerrit token, usable only for tool gerrit (the credential service asks the policy service)
    const secret = await settled(() => call('credential', '/v1/secrets', tok.admin, { method: 'POST', body: { name: 'gerrit-token', value: GERRIT_TOKEN, scopes: ['tool:gerrit'] } }), 201);
    id.secret = secret.json.id;
    expect(secret.body).not.toContain(GERRIT_TOKEN);

    // the egress rule (a file per tenant: the orchestrator has no rules API yet): GET /a/changes/ on
    // the Gerrit stand-in, the vault's secret injected as Authorization; then the orchestrator starts
    const rulesFile = join(workDir, 'egress-rules.json');
    writeFileSync(
      rulesFile,
      JSON.stringify({
        [ACME]: [
          {
            id: 'gerrit-changes',
            host: 'gerrit.acme.test',
            ports: [gerritPort],
            methods: ['GET'],
            pathPrefixes: ['/a/changes/'],
            addresses: ['127.0.0.1'],
            upstreamCaPem: devCa,
            inject: { secretId: id.secret, tool: 'gerrit', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } },
          },
        ],
      }),
    );
    const [orchestrator] = start(['sandbox-orchestrator'], { 'sandbox-orchestrator': { SANDBOX_INSTANCE: INSTANCE, SANDBOX_EGRESS_RULES_FILE: rulesFile } });
    handles.push(orchestrator);

    // billing: the price table, team $50 a month, agent $5 a day (micro-USD)
    const price = (provider: string, model: string, kind: string, micros: number) => ({ provider, model, kind, microsPerMillion: String(micros) });
    await ok(call('billing', '/v1/price-tables', tok.admin, {
      method: 'PUT',
      body: { currency: 'USD', entries: [price('onprem', 'llama-local', 'input_tokens', 1_000_000), price('onprem', 'llama-local', 'output_tokens', 2_000_000), price('cloud', 'gpt-cloud', 'input_tokens', 2_500_000), price('cloud', 'gpt-cloud', 'output_tokens', 10_000_000)] },
    }));
    await ok(call('billing', '/v1/budgets/team/platform', tok.admin, { method: 'PUT', body: { limitMicros: '50000000', period: 'month', timeZone: 'UTC', hard: true } }));
    await ok(call('billing', `/v1/budgets/agent/${id.agent}`, tok.admin, { method: 'PUT', body: { limitMicros: '5000000', period: 'day', timeZone: 'UTC', hard: true } }));
    const effective = await ok(call('billing', '/v1/price-tables/effective', tok.admin));
    expect(effective.body).toContain('llama-local');

    // models: the private one (inside the perimeter) and an external one, one route preferring the external
    const router = (path: string, body: object) => ok(call('llm-router', path, tok.admin, { method: 'PUT', body }));
    await router('/v1/router/providers/onprem', { kind: 'openai', baseUrl: `${onprem.url}/v1`, compliance: 'private' });
    await router('/v1/router/providers/cloud', { kind: 'openai', baseUrl: `${cloud.url}/v1`, compliance: 'external' });
    await router('/v1/router/models/local', { providerId: 'onprem', upstreamModel: 'llama-local', contextWindow: 128000, maxOutputTokens: 2048, inputMicrosPerMTok: 1_000_000, outputMicrosPerMTok: 2_000_000 });
    await router('/v1/router/models/gpt', { providerId: 'cloud', upstreamModel: 'gpt-cloud', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 2_500_000, outputMicrosPerMTok: 10_000_000 });
    await router('/v1/router/routes/default', { candidates: ['gpt', 'local'] });
    const catalog = await ok(call('llm-router', '/v1/router/catalog', tok.admin));
    expect(catalog.json.providers.onprem).toMatchObject({ compliance: 'private' });
    expect(catalog.json.providers.cloud).toMatchObject({ compliance: 'external' });

    await runner.waitReady([orchestrator], { timeoutMs: 90_000 });
  });

  it('2. the agent exchanges its key for a token acting for alice, in team platform', async () => {
    tok.agent = await agentToken();
    expect(decodeJwt(tok.agent)).toMatchObject({ ptp: 'agent', sub: id.agent, tid: ACME, act: { sub: id.alice }, teams: ['platform'], dept: 'platform' });
    const me = await ok(call('auth', '/v1/me/agent', tok.agent));
    expect(me.json).toMatchObject({ agentId: id.agent, actingFor: id.alice });
  });

  it('3. a prompt with an e-mail, an IBAN and a card: masked, routed to the private model, reserved and settled in billing, audited with the text only in personal', async () => {
    onprem.records.length = 0;
    cloud.records.length = 0;
    const prompt = `Refund ${EMAIL} on IBAN ${IBAN}, card ${CARD}, for the release 4.2 outage.`;
    const { data: completion, response } = await openai(tok.agent).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: prompt }] }).withResponse();
    const requestId = response.headers.get('x-palisade-request-id')!;
    expect(requestId).toBeTruthy();
    // the caller gets its own values back; the external provider received nothing, the private one only placeholders
    expect(completion.choices[0].message.content).toContain(EMAIL);
    expect(cloud.records).toHaveLength(0);
    expect(onprem.records).toHaveLength(1);
    for (const value of [EMAIL, IBAN, CARD]) expect(onprem.records[0].body).not.toContain(value);
    expect(onprem.records[0].body).toContain('⟦EMAIL_1⟧');

    // billing: the hold was reserved and settled with the real usage: posted > 0, nothing pending
    const status = await eventually(async () => {
      const s = await budgetStatus();
      return s.pendingMicros === '0' && Number(s.postedMicros) > 0 ? s : undefined;
    }, 30_000, 200);
    expect(Number(status.postedMicros)).toBeLessThanOrEqual(Number(status.limitMicros));
    const usage = await ok(call('billing', `/v1/usage?from=${encodeURIComponent(since)}&to=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}&groupBy=agent,model`, tok.admin));
    expect(usage.body).toContain(id.agent);

    // audit: the model-io event, read by the tenant's auditor through the audit API; the prompt only in `personal` (alice's)
    const event = await eventually(async () => {
      const r = await call('audit', `/v1/audit/events?type=llm-router.model-call.recorded&from=${encodeURIComponent(since)}&limit=100`, tok.audrey);
      return r.status === 200 ? r.json.items.find((i: { event: { data: { requestId?: string } } }) => JSON.stringify(i.event).includes(requestId)) : undefined;
    }, 60_000, 500);
    expect(event.event).toMatchObject({ tenantId: ACME, actor: { type: 'agent', id: id.agent }, data: { providerId: 'onprem', classification: 'confidential', outcome: 'served' } });
    expect(event.event.personal).toMatchObject({ subjectId: id.alice });
    expect(JSON.stringify(event.event.personal)).toContain(EMAIL);
    const outsidePersonal = JSON.stringify({ ...event.event, personal: undefined });
    for (const value of [EMAIL, IBAN, CARD]) expect(outsidePersonal).not.toContain(value);
  });
});
