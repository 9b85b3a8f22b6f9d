import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, infra, TestTokenIssuer } from '@palisade/testing';
import { call, TestIssuer, type Reply } from './support/https';

// The built credential service deciding through the built policy service (port offset
// 7700: policy on 14802, credential on 14803), both as processes, over their real HTTPS
// APIs and NATS (mTLS). Each service verifies tokens signed by a key of the test's own
// (AUTH_JWKS per service, each token for its audience). The policy service also holds the
// credential issuer's key: the credential service forwards an agent's token (issued for
// the credential audience) with each decision, and the policy service verifies it for
// that audience and takes the agent and its user from it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 7700;
const POLICY = 7102 + OFFSET;
const CREDENTIAL = 7103 + OFFSET;
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'e2e-credential-policy');

/** One JWKS with the keys of several test issuers. */
const jwksOf = (...issuers: TestTokenIssuer[]) => JSON.stringify({ keys: issuers.flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });

describe('credential service deciding through the policy service', () => {
  let handles: Array<{ name: string; stop(): Promise<unknown> }> = [];
  let credentialIssuer: TestIssuer;
  let policyIssuer: TestTokenIssuer;
  let sandbox: ServiceIdentity;
  let credentialService: ServiceIdentity;
  let keyDir: string;
  const tenant = `pol-${randomBytes(4).toString('hex')}`;
  const t: Record<string, string> = {};
  let policyAdmin: string;

  const policyCall = async (method: string, path: string, body: unknown) => {
    const r = await call(POLICY, method, path, { token: policyAdmin, body });
    expect([200, 201]).toContain(r.status);
    return r;
  };
  const stopPolicy = async () => {
    const policy = handles.find((h) => h.name === 'policy');
    handles = handles.filter((h) => h !== policy);
    await policy?.stop();
  };
  const message = (r: Reply) => String(r.json?.error?.message ?? '');
  const lease = (token: string, secretId: string, tool: string) => call(CREDENTIAL, 'POST', '/v1/leases', { token, body: { secretId, sessionId: 'sbx-1', tool } });
  const create = (token: string, name: string, scopes: string[]) => call(CREDENTIAL, 'POST', '/v1/secrets', { token, body: { name, value: `v-${randomBytes(8).toString('hex')}`, scopes } });

  beforeAll(async () => {
    credentialIssuer = await TestIssuer.create();
    policyIssuer = await TestTokenIssuer.create(audienceOf('policy'));
    keyDir = mkdtempSync(join(tmpdir(), 'palisade-cred-policy-e2e-'));
    handles = runner.startServices({
      services: ['policy', 'credential'],
      portOffset: OFFSET,
      logDir: LOG_DIR,
      env: { LOG_LEVEL: 'warn' },
      envFor: (name: string) =>
        name === 'policy'
          ? { AUTH_JWKS: jwksOf(policyIssuer, credentialIssuer) }
          : { AUTH_JWKS: credentialIssuer.jwks, CREDENTIAL_ACCESS_POLICY: 'policy', CREDENTIAL_MASTER_KEY_FILE: join(keyDir, 'master.key') },
    });
    await runner.waitReady(handles, { timeoutMs: 120000 });
    sandbox = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'sandbox-orchestrator' });
    credentialService = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });

    // Credential tokens carry no credential scopes: the policy decides, not the token. An
    // agent's names the user it acts for as the auth service does (RFC 8693 `act.sub`).
    const token = (sub: string, ptp: 'user' | 'agent', act?: string) => credentialIssuer.token({ sub, tid: tenant, ptp, ...(act ? { act: { sub: act } } : {}) });
    t.alice = await token('alice', 'user');
    t.bob = await token('bob', 'user');
    t.agentForBob = await token('helper', 'agent', 'bob');
    t.agentForAlice = await token('helper', 'agent', 'alice');
    policyAdmin = await policyIssuer.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });

    await policyCall('PUT', '/v1/roles/secrets-admin', { inherits: [] });
    await policyCall('PUT', '/v1/roles/tool-runner', { inherits: [] });
    await policyCall('POST', '/v1/assignments', {
      assignments: [
        { subject: 'user:alice', role: 'secrets-admin' },
        { subject: 'user:bob', role: 'tool-runner' },
        { subject: 'agent:helper', role: 'tool-runner' },
      ],
    });
    await policyCall('PUT', '/v1/policies/credentials', {
      rules: [
        ...['create', 'read', 'rotate', 'revoke'].map((a) => ({ id: `admin-${a}`, effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: `credential.${a}` })),
        { id: 'use', effect: 'allow', subject: 'role:tool-runner', resource: 'credential', action: 'credential.use' },
        { id: 'run-tools', effect: 'allow', subject: 'role:tool-runner', resource: 'tool', action: 'invoke' },
      ],
    });
    await policyCall('PUT', '/v1/tools', { tools: ['gerrit', 'doors'] });
    await policyCall('PUT', '/v1/agents/helper/tools', { tools: ['gerrit'] });
    // the policy instance applies its own changes from the event store: wait for the last one,
    // asked as the credential service will (its certificate, the agent's token forwarded)
    const probe = { tenantId: tenant, subject: { type: 'agent', id: 'helper', token: t.agentForBob }, action: 'invoke', resource: { type: 'tool', id: 'gerrit' } };
    const mtls = { cert: credentialService.tlsOptions().cert as string, key: credentialService.tlsOptions().key as string };
    await eventually(async () => (await call(POLICY, 'POST', '/v1/authorize', { ...mtls, body: probe })).json?.decision === 'allow', 10000, 50);
  }, 180000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    sandbox?.stop();
    credentialService?.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  let secretId: string;
  let unread: string;

  it('lets the secrets administrator create, read, rotate and revoke by policy, with no credential scope in the token', async () => {
    const created = await create(t.alice, `gerrit-${randomBytes(3).toString('hex')}`, ['tool:gerrit', 'tool:doors']);
    expect(created.status).toBe(201);
    secretId = created.json.id;
    const got = await call(CREDENTIAL, 'GET', `/v1/secrets/${secretId}`, { token: t.alice });
    expect(got.status).toBe(200);
    const rotated = await call(CREDENTIAL, 'POST', `/v1/secrets/${secretId}/rotate`, { token: t.alice, body: { value: 'second' }, headers: { 'if-match': got.headers.etag as string } });
    expect(rotated.status).toBe(200);
    const other = await create(t.alice, `doors-${randomBytes(3).toString('hex')}`, ['tool:gerrit']);
    expect(other.status).toBe(201);
    unread = other.json.id; // asked about only once the policy service is stopped
    const doomed = await create(t.alice, `old-${randomBytes(3).toString('hex')}`, ['tool:gerrit']);
    const revoked = await call(CREDENTIAL, 'POST', `/v1/secrets/${doomed.json.id}/revoke`, { token: t.alice, body: { reason: 'policy e2e' } });
    expect(revoked.status).toBe(200);
    // what no rule grants is refused: alice may not delete
    const shred = await call(CREDENTIAL, 'DELETE', `/v1/secrets/${doomed.json.id}`, { token: t.alice });
    expect(shred.status).toBe(403);
    expect(message(shred)).toContain('policy denies credential.delete (rule default-deny)');
  });

  it('refuses bob, who may only use credentials, naming the rule', async () => {
    const r = await create(t.bob, 'bobs', ['tool:gerrit']);
    expect(r.status).toBe(403);
    expect(message(r)).toBe('policy denies credential.create (rule default-deny): no rule allows this');
    const rotate = await call(CREDENTIAL, 'POST', `/v1/secrets/${secretId}/rotate`, { token: t.bob, body: { value: 'x' }, headers: { 'if-match': '"2"' } });
    expect(rotate.status).toBe(403);
  });

  it("grants an agent acting for bob a lease for a tool on its allowlist, and refuses one outside it or the secret's scopes", async () => {
    const granted = await lease(t.agentForBob, secretId, 'gerrit');
    expect(granted.status).toBe(201);
    const redeemed = await call(CREDENTIAL, 'POST', '/internal/v1/leases/redeem', {
      cert: sandbox.tlsOptions().cert as string,
      key: sandbox.tlsOptions().key as string,
      body: { token: granted.json.token, tenantId: tenant, sessionId: 'sbx-1', tool: 'gerrit' },
    });
    expect(redeemed.status).toBe(200);
    expect(redeemed.json.value).toBe('second');

    const notAllowlisted = await lease(t.agentForBob, secretId, 'doors'); // in the secret's scopes, not on the agent's allowlist
    expect(notAllowlisted.status).toBe(403);
    expect(message(notAllowlisted)).toBe("policy denies invoke (rule agent-tool-allowlist): tool doors is not on this agent's allowlist");
    const notScoped = await lease(t.agentForBob, unread, 'doors'); // checked locally, before the policy is asked
    expect(notScoped.status).toBe(403);
    expect(message(notScoped)).toBe('the secret is not scoped to tool doors');
    const agentCreates = await create(t.agentForBob, 'agents', ['tool:gerrit']);
    expect(agentCreates.status).toBe(403);
    expect(message(agentCreates)).toBe('an agent may not create credentials');
  });

  it('refuses the same agent acting for alice, who may not use credentials (the intersection)', async () => {
    const r = await lease(t.agentForAlice, secretId, 'gerrit');
    expect(r.status).toBe(403);
    expect(message(r)).toContain('the user the agent acts for may not');
  });

  it("enforces revoking bob's role at once: cached decisions are dropped on the policy event", async () => {
    expect((await lease(t.agentForBob, secretId, 'gerrit')).status).toBe(201); // cached allow
    const started = Date.now();
    await policyCall('POST', '/v1/assignments/revoke', { assignments: [{ subject: 'user:bob', role: 'tool-runner' }] });
    let refused: Reply | undefined;
    await eventually(
      async () => {
        const r = await lease(t.agentForBob, secretId, 'gerrit');
        if (r.status === 201) return false;
        refused = r;
        return true;
      },
      2000,
      20,
    );
    console.log(`credential refused bob's agent ${Date.now() - started} ms after the role was revoked (request to refusal)`);
    expect(refused!.status).toBe(403);
    expect(message(refused!)).toContain('the user the agent acts for may not');
  });

  it('fails closed with the policy service stopped: 503, never 500, never an allow', async () => {
    await stopPolicy();
    const read = await call(CREDENTIAL, 'GET', `/v1/secrets/${unread}`, { token: t.alice });
    expect(read.status).toBe(503);
    expect(message(read)).toMatch(/^the policy service could not decide/);
    const leased = await lease(t.agentForBob, unread, 'gerrit');
    expect(leased.status).toBe(503);
    const revoke = await call(CREDENTIAL, 'POST', `/v1/secrets/${unread}/revoke`, { token: t.alice, body: { reason: 'policy down' } });
    expect(revoke.status).toBe(503);
    // the vault itself stays ready: only decisions are refused
    const ready = await call(CREDENTIAL, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
  });
});
