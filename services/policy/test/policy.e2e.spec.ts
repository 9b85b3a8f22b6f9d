import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { connectNats, injectTraceContext, rpcRequest, rpcWireSubject, type NatsConnection } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { PolicyClient, isAllowed } from '@palisade/policy-client';
import { eventually, infra } from '@palisade/testing';
import { call, TestIssuer } from './helpers';

// Two instances of the built policy service (offset 5000: 12102 and 12112) sharing
// one database, asked over NATS (mTLS) and HTTPS; tokens signed by a key of our own
// that the service verifies through AUTH_JWKS.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT_A = 12102;
const PORT_B = 12112;

const tenant = `t-${randomBytes(4).toString('hex')}`;
const other = `o-${randomBytes(4).toString('hex')}`;

describe('policy service (two instances)', () => {
  let issuer: TestIssuer;
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  let caller: ServiceIdentity;
  let nc: NatsConnection;
  let admin: string;
  let otherAdmin: string;
  let mtls: { cert: string; key: string };
  /** helper's token acting for alice, as presented to the credential service (the asking service here). */
  let helper: string;
  const put = async (path: string, body: unknown, method = 'PUT') => {
    const r = await call(PORT_A, method, path, { token: admin, body });
    expect([200, 201]).toContain(r.status);
    return r;
  };

  beforeAll(async () => {
    issuer = await TestIssuer.create();
    const logDir = (n: string) => join(infra('PALISADE_HOME'), 'logs', 'policy-e2e', n);
    const env = { AUTH_JWKS: issuer.jwks, LOG_LEVEL: 'warn' };
    handles = [
      ...runner.startServices({ services: ['policy'], env: { ...env, HTTP_PORT: String(PORT_A) }, logDir: logDir('a') }),
      ...runner.startServices({ services: ['policy'], env: { ...env, HTTP_PORT: String(PORT_B) }, logDir: logDir('b') }),
    ];
    // one at a time: the runner keys readiness by service name
    for (const h of handles) await runner.waitReady([h], { timeoutMs: 90000 });
    caller = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });
    const { cert, key } = caller.tlsOptions() as { cert: string; key: string };
    mtls = { cert, key };
    nc = await connectNats({ servers: infra('NATS_URL'), identity: caller, name: 'policy-e2e' });
    admin = await issuer.token({ tenantId: tenant, id: 'admin', scopes: ['policy:admin'] });
    helper = await issuer.agentToken('credential', { tenantId: tenant, id: 'helper', actingFor: 'alice' });
    otherAdmin = await issuer.token({ tenantId: other, id: 'admin', scopes: ['policy:admin'] });

    for (const [name, def] of Object.entries({
      department: { target: 'subject', type: 'string' },
      clearance: { target: 'subject', type: 'level', levels: ['public', 'internal', 'confidential', 'secret'] },
      classification: { target: 'resource', type: 'level', levels: ['public', 'internal', 'confidential', 'secret'] },
    })) {
      await put(`/v1/attributes/${name}`, def);
    }
    await put('/v1/roles/employee', { inherits: [] });
    await put('/v1/roles/analyst', { inherits: ['employee'] });
    await put('/v1/roles/cfo', { inherits: ['employee'] });
    await put('/v1/assignments', { assignments: [{ subject: 'user:alice', role: 'analyst' }, { subject: 'agent:helper', role: 'analyst' }, { subject: 'user:carla', role: 'cfo' }] }, 'POST');
    await put('/v1/subjects/user:alice/attributes', { attributes: { department: 'finance', clearance: 'confidential' } });
    await put('/v1/subjects/agent:helper/attributes', { attributes: { clearance: 'internal' } });
    await put('/v1/policies/main', {
      rules: [
        { id: 'read-docs', effect: 'allow', subject: 'role:employee', resource: 'document', action: 'read', when: { attr: 'subject.clearance', op: 'gte', ref: 'resource.classification' } },
        { id: 'mask-iban', effect: 'mask', subject: 'role:employee', resource: 'document', action: 'read', fields: ['iban'] },
        { id: 'pay', effect: 'allow', subject: 'role:analyst', resource: 'payment', action: 'payments.create' },
        { id: 'cfo-approves', effect: 'allow', subject: 'role:cfo', resource: 'approval', action: 'approve' },
      ],
    });
    await put('/v1/tools', { tools: ['search'] });
    await put('/v1/agents/helper/tools', { tools: ['search'] });
    // NATS requests reach either instance (queue group): wait until B, which learns the
    // changes from the event store, has applied the last one too.
    await eventually(async () => {
      const r = await call(PORT_B, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, subject: { type: 'agent', id: 'helper', token: helper }, action: 'invoke', resource: { type: 'tool', id: 'search' } } });
      return r.status === 200 && !['tenant-tool-allowlist', 'agent-tool-allowlist'].includes(r.body.rule);
    }, 10000, 50);
    await eventually(async () => {
      const r = await call(PORT_B, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, ...docRead('internal') } });
      return r.status === 200 && r.body.decision === 'allow';
    }, 10000, 50);
  }, 150000);

  afterAll(async () => {
    await nc?.drain().catch(() => undefined);
    caller?.stop();
    await Promise.all(handles.map((h) => h.stop()));
  });

  const ask = (request: object) => rpcRequest<{ decision: string; rule: string; reason: string; fields?: object; actionHash?: string; explain?: object }>(nc, 'palisade.rpc.policy.authorize', { tenantId: tenant, ...request });
  const docRead = (classification: string) => ({ subject: { type: 'user', id: 'alice' }, action: 'read', resource: { type: 'document', id: 'd1', attributes: { classification }, fields: ['title', 'iban'] } });

  it('decides over NATS and HTTPS with a client certificate, with fields, and never explains to a service', async () => {
    await expect(ask(docRead('internal'))).resolves.toMatchObject({ decision: 'allow', rule: 'main/read-docs', fields: { readable: ['title'], masked: ['iban'] } });
    await expect(ask(docRead('secret'))).resolves.toMatchObject({ decision: 'deny', rule: 'default-deny' });
    const overHttps = await call(PORT_B, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, ...docRead('internal'), explain: true } });
    expect(overHttps.status).toBe(200);
    expect(overHttps.body).toMatchObject({ decision: 'allow', rule: 'main/read-docs' });
    expect(overHttps.body).not.toHaveProperty('explain'); // issue 10: the attributes it read are not for services
    const overNats = await ask({ ...docRead('internal'), explain: true });
    expect(overNats).toMatchObject({ decision: 'allow' });
    expect(overNats).not.toHaveProperty('explain');
    // explain is for the tenant's policy administrators, in their own tenant
    const explained = await call(PORT_B, 'POST', '/v1/authorize/explain', { token: admin, body: { ...docRead('internal'), tenantId: other } });
    expect(explained.status).toBe(200);
    expect(explained.body.explain).toEqual({
      rule: 'main/read-docs',
      matched: ['main/read-docs', 'main/mask-iban'],
      attributes: { 'subject.clearance': 'confidential', 'resource.classification': 'internal' },
    });
    const alice = await issuer.token({ tenantId: tenant, id: 'alice' });
    expect((await call(PORT_B, 'POST', '/v1/authorize/explain', { token: alice, body: docRead('internal') })).status).toBe(403);
    expect((await call(PORT_B, 'POST', '/v1/authorize/explain', { ...mtls, body: docRead('internal') })).status).toBe(401);
    const batchExplained = await rpcRequest<{ decisions: object[] }>(nc, 'palisade.rpc.policy.authorize-batch', { requests: [{ tenantId: tenant, ...docRead('internal'), explain: true }] });
    expect(batchExplained.decisions[0]).not.toHaveProperty('explain');
    const batch = await rpcRequest<{ decisions: Array<{ decision: string }> }>(nc, 'palisade.rpc.policy.authorize-batch', {
      requests: [docRead('public'), docRead('secret'), { ...docRead('public'), subject: { type: 'agent', id: 'helper', token: helper } }].map((r) => ({ tenantId: tenant, ...r })),
    });
    expect(batch.decisions.map((d) => d.decision)).toEqual(['allow', 'deny', 'allow']);
    const httpBatch = await call(PORT_A, 'POST', '/v1/authorize/batch', { ...mtls, body: { requests: [{ tenantId: tenant, ...docRead('public') }] } });
    expect(httpBatch.body.decisions[0].decision).toBe('allow');
  });

  it('enforces a change made on one instance on the other within a second, applying the event (no reload)', async () => {
    const request = { tenantId: tenant, subject: { type: 'user', id: 'alice' }, action: 'archive', resource: { type: 'document' } };
    const onB = async () => (await call(PORT_B, 'POST', '/v1/authorize', { ...mtls, body: request })).body.decision as string;
    expect(await onB()).toBe('deny'); // tenant loaded on B before the change
    const appliedBefore = await appliedOn(PORT_B);
    const current = await call(PORT_A, 'GET', '/v1/policies/main', { token: admin });
    const started = Date.now();
    const changed = await call(PORT_A, 'PUT', '/v1/policies/main', {
      token: admin,
      headers: { 'if-match': current.headers.etag as string },
      body: { rules: [...current.body.rules, { id: 'archive', effect: 'allow', subject: 'role:analyst', resource: 'document', action: 'archive' }] },
    });
    expect(changed.status).toBe(200);
    await eventually(async () => (await onB()) === 'allow', 1000, 10);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(1000);
    expect(await appliedOn(PORT_B)).toBeGreaterThan(appliedBefore);

    // a stale version is refused; a rollback restores the earlier rules everywhere
    const stale = await call(PORT_A, 'PUT', '/v1/policies/main', { token: admin, headers: { 'if-match': current.headers.etag as string }, body: { rules: [] } });
    expect(stale.status).toBe(409);
    const rolled = await call(PORT_A, 'POST', '/v1/policies/main/rollback', { token: admin, body: { toVersion: Number(JSON.parse(current.headers.etag as string)) } });
    expect(rolled.status).toBe(200);
    await eventually(async () => (await onB()) === 'deny', 1000, 10);
  });

  it('requires an approval for a payment, bound to the exact parameters and the service it names, one time, never by the requester', async () => {
    const agent = { type: 'agent', id: 'helper', token: helper };
    const payment = { subject: agent, action: 'payments.create', resource: { type: 'payment', id: 'p-1' }, parameters: { amount: 1200, iban: 'DE00' } };
    const first = await ask(payment);
    expect(first).toMatchObject({ decision: 'requires_approval', rule: 'critical-action' });

    const agentToken = await issuer.token({ tenantId: tenant, id: 'helper', type: 'agent', actingFor: 'alice' });
    const requested = await call(PORT_A, 'POST', '/v1/approvals', { token: agentToken, body: { action: 'payments.create', resource: { type: 'payment', id: 'p-1' }, parameters: { amount: 1200, iban: 'DE00' }, service: 'credential' } });
    expect(requested.status).toBe(201);
    expect(requested.body.service).toBe('credential');
    const unnamed = await call(PORT_A, 'POST', '/v1/approvals', { token: agentToken, body: { action: 'payments.create', resource: { type: 'payment', id: 'p-1' } } });
    expect(unnamed.status).toBe(400);
    expect(requested.body.actionHash).toBe(first.actionHash);
    const id = requested.body.approvalId as string;

    const selfApproval = await call(PORT_A, 'POST', `/v1/approvals/${id}/approve`, { token: agentToken });
    expect(selfApproval.status).toBe(403);
    const alice = await issuer.token({ tenantId: tenant, id: 'alice' });
    const unauthorized = await call(PORT_A, 'POST', `/v1/approvals/${id}/approve`, { token: await issuer.token({ tenantId: tenant, id: 'bob' }) });
    expect(unauthorized.status).toBe(403);
    // four eyes across acting-for (issue 12): the user the agent acts for may not approve
    // its request, even holding the approver role; nor may another agent
    await put('/v1/assignments', { assignments: [{ subject: 'user:alice', role: 'cfo' }, { subject: 'agent:other-bot', role: 'cfo' }] }, 'POST');
    await eventually(async () => ((await call(PORT_A, 'GET', '/v1/policy-set', { token: admin })).body.assignments as Array<{ subject: string; role: string }>).some((a) => a.subject === 'user:alice' && a.role === 'cfo'), 5000, 50);
    const byAlice = await call(PORT_A, 'POST', `/v1/approvals/${id}/approve`, { token: alice });
    expect(byAlice.status).toBe(403);
    expect(byAlice.body.error.message).toBe('the user an agent acts for may not approve or reject its request');
    const byAliceReject = await call(PORT_A, 'POST', `/v1/approvals/${id}/reject`, { token: alice, body: {} });
    expect(byAliceReject.status).toBe(403);
    const otherBot = await issuer.token({ tenantId: tenant, id: 'other-bot', type: 'agent', actingFor: 'carla' });
    const byAgent = await call(PORT_A, 'POST', `/v1/approvals/${id}/approve`, { token: otherBot });
    expect(byAgent.status).toBe(403);
    expect(byAgent.body.error.message).toBe('only a person may approve or reject');
    await put('/v1/assignments/revoke', { assignments: [{ subject: 'user:alice', role: 'cfo' }, { subject: 'agent:other-bot', role: 'cfo' }] }, 'POST');
    const foreign = await call(PORT_A, 'POST', `/v1/approvals/${id}/approve`, { token: await issuer.token({ tenantId: other, id: 'carla' }) });
    expect(foreign.status).toBe(404);

    const carla = await issuer.token({ tenantId: tenant, id: 'carla' });
    const approved = await call(PORT_A, 'POST', `/v1/approvals/${id}/approve`, { token: carla });
    expect(approved.status).toBe(200);
    const token = approved.body.token as string;

    // over NATS a token is redeemed only in a request the asking service signs (issue 10)
    const redeem = (request: object) => rpcRequest<{ decision: string; rule: string; reason: string }>(nc, 'palisade.rpc.policy.authorize', { tenantId: tenant, ...request }, { signAs: caller });
    const otherAmount = await redeem({ ...payment, parameters: { amount: 9999, iban: 'DE00' }, approvalToken: token });
    expect(otherAmount).toMatchObject({ decision: 'deny', reason: expect.stringContaining('another action') });
    const unsigned = await ask({ ...payment, approvalToken: token });
    expect(unsigned).toMatchObject({ decision: 'deny', rule: 'approval', reason: expect.stringContaining('signed by the credential service') });
    // another service holding the token cannot redeem it (issue 10), and does not use it up
    const llmRouter = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'llm-router' });
    const { cert, key } = llmRouter.tlsOptions() as { cert: string; key: string };
    // ... not even by naming credential's inbox as the reply subject of its NATS request:
    // it never sees the answer (credential does), and the token is not used up
    const routerNc = await connectNats({ servers: infra('NATS_URL'), identity: llmRouter, name: 'policy-e2e-router' });
    llmRouter.stop();
    try {
      const forgedInbox = `_INBOX.credential.forged${randomBytes(4).toString('hex')}`;
      const answers = nc.subscribe(`${forgedInbox}.>`, { max: 1 });
      await nc.flush();
      // (with helper's token as presented to credential, so that only the redemption can stop it)
      const body = { tenantId: tenant, ...payment, approvalToken: token };
      routerNc.publish(rpcWireSubject('palisade.rpc.policy.authorize'), new TextEncoder().encode(JSON.stringify(body)), { reply: `${forgedInbox}.1` });
      for await (const m of answers) {
        expect(JSON.parse(new TextDecoder().decode(m.data))).toMatchObject({ result: { decision: 'deny', reason: expect.stringContaining('names its asker only by its reply inbox') } });
      }
    } finally {
      await routerNc.drain().catch(() => undefined);
    }
    expect((await call(PORT_B, 'GET', `/v1/approvals/${id}`, { token: carla })).body.status).toBe('approved');
    // (with helper's token as presented to it: a token presented to credential would not even verify)
    const helperAtRouter = await issuer.agentToken('llm-router', { tenantId: tenant, id: 'helper', actingFor: 'alice' });
    const byOther = await call(PORT_B, 'POST', '/v1/authorize', { cert, key, body: { tenantId: tenant, ...payment, subject: { ...agent, token: helperAtRouter }, approvalToken: token } });
    expect(byOther.body).toMatchObject({ decision: 'deny', reason: 'approval token is for the credential service' });
    await expect(redeem({ ...payment, approvalToken: token })).resolves.toMatchObject({ decision: 'allow', rule: 'approval' });
    await expect(redeem({ ...payment, approvalToken: token })).resolves.toMatchObject({ decision: 'deny', reason: 'approval token already used' });
    const status = await call(PORT_B, 'GET', `/v1/approvals/${id}`, { token: carla });
    expect(status.body.status).toBe('consumed');
  });

  it("decides for an agent from its verified token (agent, tenant, act.sub), never from the body: agent ∩ user, allowlists, within 1 s of the user losing the role", async () => {
    await put('/v1/assignments', { assignments: [{ subject: 'user:dana', role: 'analyst' }] }, 'POST');
    await put('/v1/policies/agents', { rules: [{ id: 'run-tools', effect: 'allow', subject: 'role:analyst', resource: 'tool', action: 'invoke' }] });
    await put('/v1/tools', { tools: ['search', 'deploy'] });
    const forDana = await issuer.agentToken('credential', { tenantId: tenant, id: 'helper', actingFor: 'dana' });
    const tool = (id: string, subject: object) => ({ subject: { type: 'agent', id: 'helper', ...subject }, action: 'invoke', resource: { type: 'tool', id } });
    await eventually(async () => (await ask(tool('search', { token: forDana }))).decision === 'allow', 5000, 50);
    // the tenant allowlists deploy, the agent's own allowlist does not
    await expect(ask(tool('deploy', { token: forDana }))).resolves.toMatchObject({ decision: 'deny', rule: 'agent-tool-allowlist' });
    // what the body claims beyond the token is refused: another user, no token, another agent
    await expect(ask(tool('search', { token: forDana, actingFor: 'alice' }))).resolves.toMatchObject({ decision: 'deny', rule: 'agent-token-mismatch' });
    await expect(ask(tool('search', { actingFor: 'dana' }))).resolves.toMatchObject({ decision: 'deny', rule: 'agent-unverified', reason: expect.stringContaining('subject.token is required') });
    await expect(ask({ ...tool('search', { token: forDana }), subject: { type: 'agent', id: 'other-bot', token: forDana } })).resolves.toMatchObject({ decision: 'deny', rule: 'agent-token-mismatch' });
    // a token presented to another service cannot be forwarded by this one (audience), nor a policy token
    const forRouter = await issuer.agentToken('llm-router', { tenantId: tenant, id: 'helper', actingFor: 'dana' });
    await expect(ask(tool('search', { token: forRouter }))).resolves.toMatchObject({ decision: 'deny', rule: 'agent-unverified', reason: expect.stringContaining('aud') });
    const policyAudience = await issuer.token({ tenantId: tenant, id: 'helper', type: 'agent', actingFor: 'dana' });
    await expect(ask(tool('search', { token: policyAudience }))).resolves.toMatchObject({ decision: 'deny', rule: 'agent-unverified' });
    await expect(ask(tool('search', { token: 'not.a.token' }))).resolves.toMatchObject({ decision: 'deny', rule: 'agent-unverified', reason: expect.not.stringContaining('not.a.token') });
    // ... but the service it was presented to can (its client certificate names it)
    const llmRouter = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'llm-router' });
    const { cert, key } = llmRouter.tlsOptions() as { cert: string; key: string };
    llmRouter.stop();
    const viaRouter = await call(PORT_B, 'POST', '/v1/authorize', { cert, key, body: { tenantId: tenant, ...tool('search', { token: forRouter }) } });
    expect(viaRouter.body).toMatchObject({ decision: 'allow' });
    // acting for a user without the right: the intersection refuses
    const forErin = await issuer.agentToken('credential', { tenantId: tenant, id: 'helper', actingFor: 'erin' });
    await expect(ask(tool('search', { token: forErin }))).resolves.toMatchObject({ decision: 'deny', reason: expect.stringContaining('the user the agent acts for may not') });
    // dana loses the role that granted the tool: her agent is refused within a second, on either instance
    const started = Date.now();
    await put('/v1/assignments/revoke', { assignments: [{ subject: 'user:dana', role: 'analyst' }] }, 'POST');
    await eventually(async () => {
      const [a, b] = await Promise.all([PORT_A, PORT_B].map((port) => call(port, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, ...tool('search', { token: forDana }) } })));
      return a.body.decision === 'deny' && b.body.decision === 'deny';
    }, 1000, 10);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("decides for a user from the teams and department of the user's verified token (forwarded, or at the policy service itself), never from the body (issue 12)", async () => {
    await put('/v1/roles/builder', { inherits: [] });
    await put('/v1/assignments', { assignments: [{ subject: 'user:frank', role: 'builder' }, { subject: 'user:gina', role: 'builder' }] }, 'POST');
    // stored attributes say otherwise: the token is auth's word and wins
    await put('/v1/subjects/user:frank/attributes', { attributes: { department: 'finance' } });
    await put('/v1/subjects/user:gina/attributes', { attributes: { department: 'platform' } });
    await put('/v1/policies/teams', {
      rules: [
        { id: 'platform-builds', effect: 'allow', subject: 'role:builder', resource: 'build', action: 'run', when: { attr: 'subject.department', op: 'eq', value: 'platform' } },
        { id: 'platform-approves', effect: 'allow', subject: 'role:builder', resource: 'approval', action: 'approve', when: { attr: 'subject.department', op: 'eq', value: 'platform' } },
      ],
    });
    const frank = await issuer.userToken('credential', { tenantId: tenant, id: 'frank', teams: ['platform'], dept: 'platform' });
    const gina = await issuer.userToken('credential', { tenantId: tenant, id: 'gina', teams: ['data'], dept: 'data' });
    const build = (id: string, subject: object = {}) => ({ subject: { type: 'user', id, ...subject }, action: 'run', resource: { type: 'build', id: 'b-1' } });
    await eventually(async () => (await ask(build('frank', { token: frank }))).decision === 'allow', 5000, 50);
    await expect(ask(build('gina', { token: gina }))).resolves.toMatchObject({ decision: 'deny', rule: 'default-deny' });
    const [a, b] = await Promise.all([PORT_A, PORT_B].map((port) => call(port, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, ...build('frank', { token: frank }) } })));
    expect([a.body.decision, b.body.decision]).toEqual(['allow', 'allow']);
    // without a token a user's decision stays on the stored attributes (the service's word): gina's platform
    await expect(ask(build('gina'))).resolves.toMatchObject({ decision: 'allow' });
    await expect(ask(build('frank'))).resolves.toMatchObject({ decision: 'deny' });
    // the body may not claim a department or teams, nor someone else's token, nor a token of another audience
    const claimed = await call(PORT_A, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, ...build('gina', { token: gina, department: 'platform', teams: ['platform'] }) } });
    expect(claimed.status).toBe(400);
    expect(claimed.body.error.message).toMatch(/^subject: /);
    await expect(rpcRequest(nc, 'palisade.rpc.policy.authorize', { tenantId: tenant, ...build('gina', { department: 'platform' }) })).rejects.toMatchObject({ code: 'validation' });
    await expect(ask(build('gina', { token: frank }))).resolves.toMatchObject({ decision: 'deny', rule: 'user-token-mismatch' });
    await expect(ask(build('frank', { token: frank, actingFor: 'gina' }))).resolves.toMatchObject({ decision: 'deny', rule: 'user-token-mismatch' });
    const atPolicy = await issuer.userToken('policy', { tenantId: tenant, id: 'frank', teams: ['platform'], dept: 'platform' });
    await expect(ask(build('frank', { token: atPolicy }))).resolves.toMatchObject({ decision: 'deny', rule: 'user-unverified', reason: expect.stringContaining('aud') });
    await expect(ask(build('frank', { token: 'not.a.token' }))).resolves.toMatchObject({ decision: 'deny', rule: 'user-unverified', reason: expect.not.stringContaining('not.a.token') });
    // the policy service's own routes decide about the caller from its token too: an approval's approver
    const requested = await call(PORT_A, 'POST', '/v1/approvals', { token: await issuer.token({ tenantId: tenant, id: 'alice' }), body: { action: 'payments.create', resource: { type: 'payment', id: 'p-teams' }, service: 'credential' } });
    expect(requested.status).toBe(201);
    const ginaHere = await issuer.userToken('policy', { tenantId: tenant, id: 'gina', teams: ['data'], dept: 'data' });
    expect((await call(PORT_A, 'POST', `/v1/approvals/${requested.body.approvalId}/approve`, { token: ginaHere })).status).toBe(403);
    expect((await call(PORT_A, 'POST', `/v1/approvals/${requested.body.approvalId}/approve`, { token: atPolicy })).status).toBe(200);
  });

  it('keeps tenants apart: probes with another tenant\'s identifiers find nothing and are denied', async () => {
    expect((await call(PORT_A, 'GET', '/v1/policies/main', { token: otherAdmin })).status).toBe(404);
    const crossRead = await ask({ ...docRead('public'), resource: { type: 'document', tenantId: other } });
    expect(crossRead).toMatchObject({ decision: 'deny', rule: 'cross-tenant' });
    const fromOther = await rpcRequest<{ decision: string }>(nc, 'palisade.rpc.policy.authorize', { ...docRead('public'), tenantId: other });
    expect(fromOther.decision).toBe('deny'); // alice's roles live in the first tenant only
    const shown = await call(PORT_A, 'GET', '/v1/policy-set', { token: otherAdmin });
    expect(shown.body.roles).toEqual({});
  });

  it('refuses agents and non-administrators at the administration API, and unauthenticated callers', async () => {
    const agentAdmin = await issuer.token({ tenantId: tenant, id: 'helper', type: 'agent', actingFor: 'alice', scopes: ['policy:admin'] });
    const r = await call(PORT_A, 'PUT', '/v1/policies/main', { token: agentAdmin, body: { rules: [] } });
    expect(r.status).toBe(403);
    expect(r.body.error.message).toContain('agent may not change policies');
    expect((await call(PORT_A, 'PUT', '/v1/agents/helper/tools', { token: agentAdmin, body: { tools: ['everything'] } })).status).toBe(403);
    expect((await call(PORT_A, 'PUT', '/v1/roles/x', { token: await issuer.token({ tenantId: tenant, id: 'alice' }), body: {} })).status).toBe(403);
    expect((await call(PORT_A, 'PUT', '/v1/roles/x', { body: {} })).status).toBe(401);
    expect((await call(PORT_A, 'POST', '/v1/authorize', { body: docRead('public') })).status).toBe(401); // services only, by certificate
  });

  it('answers bad input with a 4xx naming the field, and unknown things with a denial', async () => {
    const bad = await call(PORT_A, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, subject: { type: 'robot', id: 'x' }, action: 'read', resource: { type: 'document' } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^subject\.type:/);
    await expect(rpcRequest(nc, 'palisade.rpc.policy.authorize', { tenantId: tenant, action: 'read' })).rejects.toMatchObject({ code: 'validation', message: expect.stringMatching(/^subject:/) });
    const tooMany = await call(PORT_A, 'POST', '/v1/authorize/batch', { ...mtls, body: { requests: Array.from({ length: 1001 }, () => ({ tenantId: tenant, ...docRead('public') })) } });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toMatch(/^requests:/);
    const huge = await call(PORT_A, 'POST', '/v1/authorize', { ...mtls, raw: JSON.stringify({ pad: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(huge.status).toBe(413);
    const badRule = await call(PORT_A, 'PUT', '/v1/policies/bad', { token: admin, body: { rules: [{ id: 'r', effect: 'allow', subject: 'role:x', resource: 'doc', action: 'read', when: { attr: 'subject.shoeSize', op: 'gt', value: 3 } }] } });
    expect(badRule.status).toBe(400);
    expect(badRule.body.error.message).toContain('rules.0.when.attr: attribute subject.shoeSize is not defined');
    for (const probe of [
      { tenantId: 'no-such-tenant', ...docRead('public') },
      { tenantId: tenant, ...docRead('public'), subject: { type: 'user', id: 'ghost' } },
      { tenantId: tenant, ...docRead('public'), action: 'teleport' },
    ]) {
      await expect(rpcRequest(nc, 'palisade.rpc.policy.authorize', probe)).resolves.toMatchObject({ decision: 'deny' });
    }
  });

  it('answers NATS decisions from its queue subscriptions: coded validation errors naming the field, batches in order, trace context accepted', async () => {
    const batchSubject = 'palisade.rpc.policy.authorize-batch';
    const good = { tenantId: tenant, ...docRead('public') };
    await expect(rpcRequest(nc, batchSubject, { requests: [good, { ...good, subject: { type: 'robot', id: 'r' } }] })).rejects.toMatchObject({
      code: 'validation',
      message: expect.stringMatching(/^requests\.1\.subject\.type:/),
    });
    await expect(rpcRequest(nc, batchSubject, { requests: [] })).rejects.toMatchObject({ code: 'validation', message: expect.stringMatching(/^requests:/) });
    await expect(rpcRequest(nc, batchSubject, { requests: Array.from({ length: 1001 }, () => good) })).rejects.toMatchObject({ code: 'validation', message: expect.stringMatching(/^requests:/) });
    const raw = await nc.request('palisade.rpc.policy.authorize', new TextEncoder().encode('{not json'), { timeout: 2000 });
    expect(JSON.parse(new TextDecoder().decode(raw.data))).toMatchObject({ error: { code: 'validation', message: expect.stringMatching(/^request:/) } });
    // a caller's trace context (W3C headers) is accepted as the parent of the decision's span
    const h = injectTraceContext(); // NATS headers (empty: no propagator registered in this process)
    h.set('traceparent', `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`);
    const traced = await nc.request('palisade.rpc.policy.authorize', new TextEncoder().encode(JSON.stringify(good)), { timeout: 2000, headers: h });
    expect(JSON.parse(new TextDecoder().decode(traced.data))).toMatchObject({ result: { decision: 'allow', rule: 'main/read-docs' } });
    // both instances answer (queue group "policy"): 40 requests are shared between them
    const before = await Promise.all([PORT_A, PORT_B].map(decisionsOn));
    const many = await Promise.all(Array.from({ length: 40 }, () => rpcRequest<{ decision: string }>(nc, 'palisade.rpc.policy.authorize', good)));
    expect(many.every((d) => d.decision === 'allow')).toBe(true);
    const after = await Promise.all([PORT_A, PORT_B].map(decisionsOn));
    expect(after[0] - before[0] + after[1] - before[1]).toBe(40);
    expect(after[0] - before[0]).toBeGreaterThan(0);
    expect(after[1] - before[1]).toBeGreaterThan(0);
  });

  it('policy-client: caches decisions, drops them on a policy event of the tenant, and fails closed', async () => {
    const client = new PolicyClient({ nc, cacheTtlMs: 60_000 });
    await client.listen('credential');
    try {
      const request = { tenantId: tenant, subject: { type: 'user' as const, id: 'alice' }, action: 'export', resource: { type: 'document' } };
      await expect(client.authorize(request)).resolves.toMatchObject({ decision: 'deny' });
      // events of the earlier tests still in flight (outbox → JetStream) may drop it once: ask until it stays
      await eventually(async () => (await client.authorize(request), await new Promise((r) => setTimeout(r, 100)), client.cached === 1), 5000, 50);
      await expect(isAllowed(client, request)).resolves.toBe(false); // from the cache
      const current = await call(PORT_A, 'GET', '/v1/policies/main', { token: admin });
      const added = await call(PORT_A, 'PUT', '/v1/policies/main', { token: admin, body: { rules: [...current.body.rules, { id: 'export', effect: 'allow', subject: 'role:analyst', resource: 'document', action: 'export' }] } });
      expect(added.status).toBe(200);
      await eventually(() => client.cached === 0, 5000, 20); // the event reached this instance through JetStream
      // Either policy instance may answer: wait until B, which learns the change from the
      // event store, has it too (asking through the client would cache B's stale answer).
      await eventually(async () => {
        const r = await call(PORT_B, 'POST', '/v1/authorize', { ...mtls, body: request });
        return r.status === 200 && r.body.decision === 'allow';
      }, 5000, 50);
      await expect(isAllowed(client, request)).resolves.toBe(true);

      const closed = await connectNats({ servers: infra('NATS_URL'), identity: caller, name: 'policy-e2e-closed' });
      await closed.close();
      const failing = new PolicyClient({ nc: closed, timeoutMs: 200 });
      await expect(failing.authorize(request)).resolves.toMatchObject({ decision: 'deny', rule: 'policy-unavailable' });
      await expect(failing.authorizeBatch([request, request])).resolves.toEqual([expect.objectContaining({ decision: 'deny' }), expect.objectContaining({ decision: 'deny' })]);
      const wrong = new PolicyClient({ nc, timeoutMs: 2000 });
      await expect(wrong.authorize({ ...request, action: 'not an action' })).resolves.toMatchObject({ decision: 'deny', rule: 'policy-unavailable' }); // a validation error is a denial too
    } finally {
      await client.close();
    }
  });

  async function decisionsOn(port: number): Promise<number> {
    const metrics = (await call(port, 'GET', '/metrics', mtls)).body as string;
    return metrics
      .split('\n')
      .filter((l) => l.startsWith('palisade_policy_decisions_total'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  }

  async function appliedOn(port: number): Promise<number> {
    const metrics = (await call(port, 'GET', '/metrics', mtls)).body as string;
    const line = metrics.split('\n').find((l) => l.startsWith('palisade_policy_changes_applied_total'));
    return line ? Number(line.split(' ').pop()) : 0;
  }
});
