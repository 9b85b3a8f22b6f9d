import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, audienceOf } from '@palisade/auth-verifier';
import { issueCertificate, loadCa, ServiceIdentity } from '@palisade/pki';
import { eventually, httpsCaller, infra, type CallOptions, type Reply } from '@palisade/testing';

// Credential injection end to end: the built policy, credential and sandbox-orchestrator
// services (offset 9700: 16802, 16803, 16804; instance e2e9700), the credential service
// deciding through the policy service (CREDENTIAL_ACCESS_POLICY=policy). A secret is
// stored in the vault; the tenant's egress rule set (PUT /v1/egress-rules/tenant by a
// policy administrator) names it for a local HTTPS stand-in upstream that records the
// Authorization it receives. An agent runs code in a sandbox that fetches
// through the egress proxy: the proxy grants a lease with the agent's own token (the one it
// presented to the exec route, held for that execution only), redeems it over mTLS with the
// orchestrator's certificate and injects the value. Tokens are signed by a key of the test's
// own (AUTH_JWKS for all three). The agent's token carries BOTH audiences
// (palisade:sandbox-orchestrator and palisade:credential), as auth issues it when the agent
// asks `POST /v1/agents/token {apiKey, audience: [...]}` for those two; a token for the
// orchestrator only is refused by the credential service, and the injection with it (502).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 9700;
const POLICY = 7102 + OFFSET;
const CREDENTIAL = 7103 + OFFSET;
const ORCHESTRATOR = 7104 + OFFSET;
const INSTANCE = 'e2e9700';
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a policy or
// billing instance of another suite on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = INSTANCE;
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'egress-injection-e2e');
const ORCHESTRATOR_AUD = audienceOf('sandbox-orchestrator');
const CREDENTIAL_AUD = audienceOf('credential');

const tenant = `inj-${randomBytes(4).toString('hex')}`;
const SECRET = `upstream-secret-${randomUUID()}`;

jest.setTimeout(90_000);

/** Access tokens of the auth-verifier contract for any audiences (auth issues agent tokens for a list of them). */
class Signer {
  private constructor(
    private readonly key: KeyLike,
    private readonly kid: string,
    readonly jwks: string,
  ) {}

  static async create(): Promise<Signer> {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const kid = `test-${randomUUID()}`;
    return new Signer(privateKey, kid, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'EdDSA' }] }));
  }

  token(aud: string[], claims: { sub: string; ptp: 'user' | 'agent'; act?: { sub: string }; scp?: string[] }): Promise<string> {
    const { sub, ptp, act, scp } = claims;
    return new SignJWT({ tid: tenant, ptp, ...(act ? { act } : {}), ...(scp ? { scp } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(aud)
      .setSubject(sub)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.key);
  }
}

describe('egress credential injection (built policy, credential and sandbox-orchestrator services, real crun)', () => {
  type Handle = { stop(signal?: string): Promise<unknown>; name: string };
  let handles: Handle[] = [];
  let dir: string;
  let upstream: Server;
  let upstreamPort = 0;
  const received: Array<{ path?: string; authorization?: string }> = [];
  const t: Record<string, string> = {};
  let secretId: string;
  let sandbox: string;
  let sessionId: string;

  const orchestrator = (path: string, token: string, options: CallOptions = {}) => httpsCaller(ORCHESTRATOR)(path, { token, timeoutMs: 60_000, ...options });
  const policy = async (path: string, method: string, body: unknown) => {
    const r = await httpsCaller(POLICY)(path, { token: t.policyAdmin, method, body });
    expect(r.status).toBeLessThan(300);
  };
  const start = (services: string[], jwks: string) =>
    runner.startServices({
      services,
      portOffset: OFFSET,
      logDir: LOG_DIR,
      env: { AUTH_JWKS: jwks, LOG_LEVEL: 'info' },
      envFor: (name: string) =>
        name === 'credential'
          ? { CREDENTIAL_ACCESS_POLICY: 'policy', CREDENTIAL_MASTER_KEY_FILE: join(dir, 'master.key') }
          : name === 'sandbox-orchestrator'
            ? { SANDBOX_INSTANCE: INSTANCE, SANDBOX_BILLING: 'off' }
            : {},
    }) as Handle[];
  const fetchCode = (path: string) =>
    [
      'import os, urllib.request, urllib.error',
      'try:',
      `    r = urllib.request.urlopen("https://upstream.test:${upstreamPort}${path}", timeout=15)`,
      '    print("status", r.status, r.read().decode())',
      'except urllib.error.HTTPError as e:',
      '    print("status", e.code, e.headers.get("x-palisade-rule"), e.read().decode())',
      'print("ENV", sorted(os.environ.items()))',
    ].join('\n');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'palisade-egress-injection-'));
    // the stand-in upstream (dev-CA certificate for upstream.test): records the Authorization and echoes it (the proxy scrubs the echo)
    const ca = await loadCa(infra('PALISADE_PKI_DIR'));
    const cert = await issueCertificate(ca, { kind: 'server', name: 'upstream-stand-in', dns: ['upstream.test'] });
    upstream = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      received.push({ path: req.url, authorization: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, youSent: req.headers.authorization ?? null }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '0.0.0.0', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;

    const signer = await Signer.create();
    t.policyAdmin = await signer.token([audienceOf('policy')], { sub: 'admin', ptp: 'user', scp: ['policy:admin'] });
    t.alice = await signer.token([ORCHESTRATOR_AUD, CREDENTIAL_AUD], { sub: 'alice', ptp: 'user' });
    // the agent's token for both services it talks to (least privilege: these two audiences, not all seven)
    t.bot = await signer.token([ORCHESTRATOR_AUD, CREDENTIAL_AUD], { sub: 'fetch-bot', ptp: 'agent', act: { sub: 'alice' } });
    // the same agent with a token for the orchestrator only
    t.botOrchestratorOnly = await signer.token([ORCHESTRATOR_AUD], { sub: 'fetch-bot', ptp: 'agent', act: { sub: 'alice' } });

    // the tenant's egress administrator: a person with the policy administration scope
    t.rulesAdmin = await signer.token([ORCHESTRATOR_AUD], { sub: 'admin', ptp: 'user', scp: ['policy:admin'] });
    const first = start(['policy', 'credential'], signer.jwks);
    handles = first;
    await runner.waitReady(first, { timeoutMs: 60_000 });
    // the allowlists first and the rules the secret's creation needs last: the policy instance
    // applies its changes in order, so once the creation is allowed every change is applied
    // (a decision asked earlier could be cached by the asking service as a deny)
    await policy('/v1/tools', 'PUT', { tools: ['execute_code', 'upstream'] });
    await policy('/v1/agents/fetch-bot/tools', 'PUT', { tools: ['execute_code', 'upstream'] });
    await policy('/v1/roles/runner', 'PUT', { inherits: [] });
    await policy('/v1/roles/secrets-admin', 'PUT', { inherits: [] });
    await policy('/v1/assignments', 'POST', {
      assignments: [
        { subject: 'user:alice', role: 'runner' },
        { subject: 'user:alice', role: 'secrets-admin' },
        { subject: 'agent:fetch-bot', role: 'runner' },
      ],
    });
    await policy('/v1/policies/injection', 'PUT', {
      rules: [
        { id: 'runners-invoke-tools', effect: 'allow', subject: 'role:runner', resource: 'tool', action: 'invoke' },
        { id: 'runners-use-credentials', effect: 'allow', subject: 'role:runner', resource: 'credential', action: 'credential.use' },
        ...['create', 'read'].map((a) => ({ id: `admin-${a}`, effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: `credential.${a}` })),
      ],
    });
    // Wait until the policy instance has applied the last change, asking it directly (as the
    // credential service, over mTLS): a decision asked through a service's policy client
    // before that could be cached there as a deny for up to 30 s.
    const asCredential = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });
    try {
      const { cert, key } = asCredential.tlsOptions();
      const probe = { tenantId: tenant, subject: { type: 'user', id: 'alice' }, action: 'credential.create', resource: { type: 'credential' } };
      await eventually(async () => (await httpsCaller(POLICY)('/v1/authorize', { cert, key, body: probe })).json?.decision === 'allow', 15_000, 100);
    } finally {
      asCredential.stop();
    }
    // the secret
    let created!: Reply;
    await eventually(async () => {
      created = await httpsCaller(CREDENTIAL)('/v1/secrets', { token: t.alice, method: 'POST', body: { name: `upstream-${randomBytes(3).toString('hex')}`, value: SECRET, scopes: ['tool:upstream'] } });
      return created.status === 201;
    }, 15_000, 200).catch((error: Error) => {
      throw new Error(`${error.message}; the secret's creation answered ${created?.status} ${created?.body}`);
    });
    secretId = created.json.id;

    const second = start(['sandbox-orchestrator'], signer.jwks);
    handles = [...first, ...second];
    await runner.waitReady(second, { timeoutMs: 60_000 });
    const rule = { id: 'upstream-api', host: 'upstream.test', ports: [upstreamPort], methods: ['GET'], pathPrefixes: ['/api/'], addresses: ['127.0.0.1'], upstreamCaPem: cert.caPem };
    const rules = await orchestrator('/v1/egress-rules/tenant', t.rulesAdmin, {
      method: 'PUT',
      body: { rules: [{ ...rule, inject: { secretId, tool: 'upstream', as: { type: 'header', name: 'Authorization', prefix: 'Bearer ' } } }] },
    });
    expect(rules.status).toBe(200);
    const opened = await orchestrator('/v1/sessions', t.alice, { method: 'POST', body: {} });
    expect([opened.status, opened.body]).toEqual([201, expect.any(String)]);
    const session = opened.json.id as string;
    expect((await orchestrator(`/v1/sessions/${session}/agents/fetch-bot`, t.alice, { method: 'PUT' })).status).toBeLessThan(300);
    const made = await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'small' } });
    expect(made.status).toBe(201);
    sandbox = made.json.id;
    sessionId = session;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await new Promise((r) => upstream?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("injects the vault's secret with a lease granted for the agent's own token: the upstream receives it, the sandbox never sees it", async () => {
    let run!: Reply;
    await eventually(async () => {
      run = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { language: 'python', code: fetchCode('/api/items?q=1') } });
      return run.status === 200;
    }, 20_000, 200).catch((error: Error) => {
      throw new Error(`${error.message}; the execution answered ${run?.status} ${run?.body}`);
    });
    const out = `${run.json.stdout}${run.json.stderr}`;
    expect(run.json).toMatchObject({ reason: 'exited', exitCode: 0 });
    expect(out).toContain('status 200');
    expect(received.at(-1)).toEqual({ path: '/api/items?q=1', authorization: `Bearer ${SECRET}` });
    // the echo was scrubbed; neither the value nor the agent's token is in the output or the environment
    expect(out).toContain('[redacted by palisade]');
    expect(out).toContain('HTTPS_PROXY');
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(t.bot);
    expect(out).not.toContain(t.bot.split('.')[2]);
  });

  it("refuses the injection (502 naming the rule, nothing sent upstream) when the execution's token is not valid for the credential service", async () => {
    const before = received.length;
    const run = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.botOrchestratorOnly, { method: 'POST', body: { language: 'python', code: fetchCode('/api/items') } });
    expect(run.status).toBe(200); // the orchestrator accepts it: its audience is there
    expect(run.json.stdout).toContain('status 502 upstream-api');
    expect(run.json.stdout).toContain('credential service /v1/leases: 401');
    expect(received.length).toBe(before);
  });

  it("uses each execution's own token (the next one injects again), and the orchestrator's log holds no value or token", async () => {
    // the previous refusal came from that execution's token, not from anything kept since
    const run = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { language: 'python', code: fetchCode('/api/again') } });
    expect(run.json.stdout).toContain('status 200');
    expect(received.at(-1)).toEqual({ path: '/api/again', authorization: `Bearer ${SECRET}` });
    const log = readFileSync(join(LOG_DIR, 'sandbox-orchestrator.log'), 'utf8');
    expect(log.length).toBeGreaterThan(0);
    for (const needle of [SECRET, Buffer.from(SECRET).toString('base64'), t.bot, t.bot.split('.')[2], t.botOrchestratorOnly.split('.')[2]]) expect(log).not.toContain(needle);
  });

  it("a session's rule set narrows the tenant's, an agent's too; the change applies to the next connection", async () => {
    const narrowed = await orchestrator(`/v1/egress-rules/session:${sessionId}`, t.rulesAdmin, { method: 'PUT', body: { rules: [{ id: 'items-only', host: 'upstream.test', ports: [upstreamPort], pathPrefixes: ['/api/items'] }] } });
    expect(narrowed.status).toBe(200);
    const items = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { language: 'python', code: fetchCode('/api/items/1') } });
    expect(items.json.stdout).toContain('status 200');
    const other = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { language: 'python', code: fetchCode('/api/other') } });
    expect(other.json.stdout).toContain('status 403 default-deny');
    expect(received.at(-1)?.path).toBe('/api/items/1');
    expect((await orchestrator(`/v1/egress-rules/session:${sessionId}`, t.rulesAdmin, { method: 'DELETE' })).status).toBe(204);
    // the agent's own rule set: an empty one leaves it nothing
    expect((await orchestrator('/v1/egress-rules/agent:fetch-bot', t.rulesAdmin, { method: 'PUT', body: { rules: [] } })).status).toBe(200);
    const none = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { language: 'python', code: fetchCode('/api/items/2') } });
    expect(none.json.stdout).not.toContain('status 200');
    expect(received.at(-1)?.path).toBe('/api/items/1');
    expect((await orchestrator('/v1/egress-rules/agent:fetch-bot', t.rulesAdmin, { method: 'DELETE' })).status).toBe(204);
    const again = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { language: 'python', code: fetchCode('/api/other') } });
    expect(again.json.stdout).toContain('status 200');
  });
});
