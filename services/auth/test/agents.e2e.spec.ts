import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { decodeJwt } from 'jose';
import { AccessTokenVerifier } from '@palisade/auth-verifier';
import { eventually, infra, startSealPersonalStandIn } from '@palisade/testing';
import { httpsCaller, testDirectory, type Reply, watchAsPolicy } from './e2e-support';

// Teams, agents, agent keys and agent tokens (issue 12) against the built auth service on
// port 15501 (offset 8400) in a schema of its own; this test process plays "another
// service" (policy): its own NATS identity, revocation feed and verifier, as the platform
// wires them, and measures how soon an agent's token is refused there.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 15501;
const schema = `auth_agents_${randomBytes(4).toString('hex')}`;
const tenant = `agents-${randomBytes(3).toString('hex')}`;
const otherTenant = `rival-${randomBytes(3).toString('hex')}`;
const ROOT_PASSWORD = 'Root-Password-1234';
const ALICE_PASSWORD = 'Alice-Password-1234';

const call = httpsCaller(PORT);
const signIn = (t: string, username: string, password: string) => call(`/v1/tenants/${t}/sign-in`, { body: { username, password } });
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_auth', user: 'palisade_auth_owner' });

let handles: Array<{ stop(): Promise<unknown> }> = [];
/** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
let peer: Awaited<ReturnType<typeof watchAsPolicy>> | undefined;
let policy: AccessTokenVerifier;
let root: string;
let rival: string;
let aliceId: string;
let alice: string;
let bot: { agentId: string; keyId: string; apiKey: string };
let helper: { agentId: string; keyId: string; apiKey: string };

const tokenFor = (apiKey: string) => call('/v1/tokens/agent', { body: { apiKey } });
const refusedBy = (token: string, reason: string) => policy.verify(token).then(
  () => false,
  (e: Error) => e.message.includes(reason),
);

async function events(tenantId: string): Promise<Array<{ type: string; data: Record<string, unknown>; actor: { type: string; id: string } }>> {
  const c = owner();
  await c.connect();
  try {
    return (await c.query(`SELECT envelope FROM ${schema}.events WHERE tenant_id = $1 ORDER BY global_position`, [tenantId])).rows.map((r) => r.envelope);
  } finally {
    await c.end();
  }
}

/** The status, and none of the other tenant's identifiers anywhere in the answer. */
function expectProbe(reply: Reply, status: number, foreign: readonly string[]) {
  expect([reply.status, reply.body]).toEqual([status, expect.any(String)]);
  for (const s of foreign) expect(reply.body).not.toContain(s);
}

async function newUser(token: string, username: string, password: string, roles: string[]): Promise<string> {
  const res = await call('/v1/users', { token, body: { username, password, roles } });
  expect(res.status).toBe(201);
  return res.json.userId as string;
}

beforeAll(async () => {
  const c = owner();
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const dir = mkdtempSync(join(tmpdir(), 'auth-agents-e2e-'));
  writeFileSync(join(dir, 'bootstrap.token'), randomBytes(32).toString('base64url'), { mode: 0o600 });
  sealing = await startSealPersonalStandIn();
  handles = runner.startServices({
    services: ['auth'],
    portOffset: 8400,
    logDir: join(infra('PALISADE_HOME'), 'logs', `auth-agents-e2e-${randomBytes(3).toString('hex')}`),
    env: {
      LOG_LEVEL: 'warn',
      PG_SCHEMA: schema,
      AUTH_JWKS_URL: `https://127.0.0.1:${PORT}/.well-known/jwks.json`,
      AUTH_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.token'),
      AUTH_OPERATOR_TENANT: tenant,
      AUTH_ADDRESS_LOCKOUT_THRESHOLD: '10000',
    },
  });
  await runner.waitReady(handles, { timeoutMs: 90000 });
  const body = { tenantId: tenant, tenantName: 'Agents', admin: { username: 'root', password: ROOT_PASSWORD } };
  expect((await call('/v1/bootstrap', { body, headers: { authorization: `Bootstrap ${readFileSync(join(dir, 'bootstrap.token'), 'utf8')}` } })).status).toBe(201);
  root = (await signIn(tenant, 'root', ROOT_PASSWORD)).json.accessToken;
  const created = await call('/v1/tenants', { token: root, body: { tenantId: otherTenant, name: 'Rival', admin: { username: 'rival-admin', password: ROOT_PASSWORD } } });
  expect(created.status).toBe(201);
  rival = (await signIn(otherTenant, 'rival-admin', ROOT_PASSWORD)).json.accessToken;

  peer = await watchAsPolicy(PORT, 'auth-agents-e2e-policy');
  policy = peer.verifier;
}, 120000);

afterAll(async () => {
  await peer?.stop();
  await Promise.all(handles.map((h) => h.stop()));
  await sealing?.stop();
  const c = owner();
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
});

describe('teams, agents and agent tokens', () => {
  it('puts alice in team platform: her token carries teams and department', async () => {
    aliceId = await newUser(root, 'alice', ALICE_PASSWORD, ['member', 'auditor']);
    const team = await call('/v1/teams', { token: root, body: { teamId: 'platform', name: 'Platform' } });
    expect(team.status).toBe(201);
    expect((await call('/v1/teams', { token: root, body: { teamId: 'platform', name: 'Again' } })).status).toBe(409);
    expect((await call('/v1/teams', { token: root, body: { teamId: 'data', name: 'Data' } })).status).toBe(201);
    expect((await call(`/v1/teams/platform/members/${aliceId}`, { method: 'PUT', token: root })).status).toBe(204);
    const renamed = await call('/v1/teams/platform', { method: 'PUT', token: root, body: { name: 'Platform Engineering' }, headers: { 'if-match': '"1"' } });
    expect(renamed.status).toBe(409); // the membership moved the version on
    const read = await call('/v1/teams/platform', { token: root });
    expect(read.json).toMatchObject({ teamId: 'platform', members: [aliceId], status: 'active' });
    expect((await call('/v1/teams/platform', { method: 'PUT', token: root, body: { name: 'Platform Engineering' }, headers: { 'if-match': read.headers.etag as string } })).status).toBe(200);
    alice = (await signIn(tenant, 'alice', ALICE_PASSWORD)).json.accessToken;
    expect(decodeJwt(alice)).toMatchObject({ sub: aliceId, teams: ['platform'], dept: 'platform', scp: expect.arrayContaining(['agents:manage', 'audit:read']) });
    const { principal } = await policy.verify(alice);
    expect(principal).toMatchObject({ teams: ['platform'], department: 'platform' });
    // A member changes no team.
    expect((await call('/v1/teams', { token: alice, body: { teamId: 'mine', name: 'Mine' } })).status).toBe(403);
  });

  it('maps directory groups to teams at sign-in (groupTeams), and leaves a mapped team the groups no longer give', async () => {
    const ldap = (groupTeams: Record<string, string>) => ({ type: 'ldap', ldap: { ...testDirectory.settings(infra('LDAP_URL'), false), groupTeams }, secret: testDirectory.bindPassword() });
    expect((await call('/v1/identity-providers/corp', { method: 'PUT', token: root, body: ldap({ engineering: 'platform', nowhere: 'no-such-team' }) })).status).toBe(200);
    const bobSignIn = () => call(`/v1/tenants/${tenant}/sign-in/ldap/corp`, { body: { username: 'bob', password: testDirectory.seededPasswords().bob } });
    const first = await bobSignIn();
    expect(first.status).toBe(200);
    expect(decodeJwt(first.json.accessToken)).toMatchObject({ sub: expect.any(String), teams: ['platform'], dept: 'platform' });
    const bobId = decodeJwt(first.json.accessToken).sub!;
    expect((await call('/v1/teams/platform', { token: root })).json.members).toContain(bobId);
    expect((await call('/v1/identity-providers/corp', { method: 'PUT', token: root, body: ldap({ 'palisade-admins': 'data' }) })).status).toBe(200);
    const again = await bobSignIn();
    expect(decodeJwt(again.json.accessToken).teams).toBeUndefined();
    expect((await call('/v1/teams/platform', { token: root })).json.members).not.toContain(bobId);
    // His earlier token listed the team: refused everywhere now.
    await eventually(() => refusedBy(first.json.accessToken, 'principal revoked'), 1000, 10);
    expect((await events(tenant)).filter((e) => e.type.startsWith('auth.team-member.') && e.data.userId === bobId).map((e) => [e.type, e.data.source])).toEqual([
      ['auth.team-member.added', 'group-mapping'],
      ['auth.team-member.removed', 'group-mapping'],
    ]);
  });

  it('alice registers release-bot in platform (not in a team of which she is no member) and issues its key', async () => {
    const refused = await call('/v1/agents', { token: alice, body: { name: 'release-bot', teamId: 'data' } });
    expect([refused.status, refused.json.error.message]).toEqual([403, expect.stringContaining('not a member')]);
    const reg = await call('/v1/agents', { token: alice, body: { name: 'release-bot', teamId: 'platform' } });
    expect(reg.status).toBe(201);
    expect(reg.json).toMatchObject({ name: 'release-bot', ownerId: aliceId, teamId: 'platform', status: 'active', parentAgentId: null });
    expect((await call('/v1/agents', { token: alice, body: { name: 'release-bot', teamId: 'platform' } })).status).toBe(409);
    // Never an administrative scope, never more than alice holds.
    const admin = await call(`/v1/agents/${reg.json.agentId}/keys`, { token: alice, body: { name: 'ci', scopes: ['auth:admin'] } });
    expect([admin.status, admin.json.error.message]).toEqual([403, expect.stringContaining('auth:admin')]);
    const key = await call(`/v1/agents/${reg.json.agentId}/keys`, { token: alice, body: { name: 'ci', scopes: ['audit:read'] } });
    expect(key.status).toBe(201);
    expect(key.json.owner).toEqual({ type: 'agent', id: reg.json.agentId });
    bot = { agentId: reg.json.agentId, keyId: key.json.keyId, apiKey: key.json.apiKey };
    const listed = await call(`/v1/agents/${bot.agentId}/keys`, { token: alice });
    expect(listed.json).toEqual([expect.objectContaining({ keyId: bot.keyId, scopes: ['audit:read'], status: 'active' })]);
    expect(listed.body).not.toContain(bot.apiKey.slice(-43));
  });

  it('the agent exchanges its key for a token acting for alice, in its team, with scopes ⊆ hers', async () => {
    const res = await tokenFor(bot.apiKey);
    expect(res.status).toBe(200);
    const claims = decodeJwt(res.json.accessToken);
    expect(claims).toMatchObject({ ptp: 'agent', sub: bot.agentId, tid: tenant, act: { sub: aliceId }, teams: ['platform'], dept: 'platform', sid: `apikey-${bot.keyId}` });
    const aliceScopes = decodeJwt(alice).scp as string[];
    expect(claims.scp).toEqual(['audit:read']);
    for (const s of claims.scp as string[]) expect(aliceScopes).toContain(s);
    const { principal } = await policy.verify(res.json.accessToken);
    expect(principal).toMatchObject({ type: 'agent', id: bot.agentId, actingFor: aliceId, teams: ['platform'], department: 'platform' });
    // The generic exchange issues no agent token (it would name no user and record nothing).
    expect((await call('/v1/tokens/api-key', { body: { apiKey: bot.apiKey } })).status).toBe(401);
    const issued = (await events(tenant)).filter((e) => e.type === 'auth.agent-token.issued');
    expect(issued.at(-1)).toMatchObject({ actor: { type: 'agent', id: bot.agentId }, data: { agentId: bot.agentId, keyId: bot.keyId, actingFor: aliceId, teamId: 'platform', scopes: ['audit:read'], jti: claims.jti } });
    expect(JSON.stringify(await events(tenant))).not.toContain(res.json.accessToken.split('.')[2]);
    // The agent reads its entry and guide.
    const self = await call('/v1/me/agent', { token: res.json.accessToken });
    expect(self.json).toMatchObject({ agentId: bot.agentId, actingFor: aliceId, guide: { text: '', version: 0 } });
  });

  it('keeps the guide for people: alice writes it (ETag / If-Match), the agent reads it and cannot change it', async () => {
    const agentToken = (await tokenFor(bot.apiKey)).json.accessToken;
    const first = await call(`/v1/agents/${bot.agentId}/guide`, { method: 'PUT', token: alice, body: { text: 'Only query Gerrit. Never merge.' }, headers: { 'if-match': '"0"' } });
    expect([first.status, first.headers.etag]).toEqual([200, '"1"']);
    const stale = await call(`/v1/agents/${bot.agentId}/guide`, { method: 'PUT', token: alice, body: { text: 'Merge anything.' }, headers: { 'if-match': '"0"' } });
    expect(stale.status).toBe(409);
    expect((await call(`/v1/agents/${bot.agentId}/guide`, { method: 'PUT', token: alice, body: { text: 'x'.repeat(16 * 1024 + 1) } })).status).toBe(400);
    const read = await call(`/v1/agents/${bot.agentId}/guide`, { token: alice });
    expect([read.json.text, read.headers.etag]).toEqual(['Only query Gerrit. Never merge.', '"1"']);
    expect((await call('/v1/me/agent', { token: agentToken })).json.guide).toMatchObject({ text: 'Only query Gerrit. Never merge.', version: 1 });
    const own = await call(`/v1/agents/${bot.agentId}/guide`, { method: 'PUT', token: agentToken, body: { text: 'I may do anything.' } });
    expect([own.status, own.json.error.message]).toEqual([403, expect.stringContaining('agents cannot administer agent guides')]);
    const changed = (await events(tenant)).filter((e) => e.type === 'auth.agent-guide.changed');
    expect(changed).toEqual([expect.objectContaining({ actor: { type: 'user', id: aliceId }, data: { agentId: bot.agentId, sha256: expect.stringMatching(/^[0-9a-f]{64}$/), bytes: 31 } })]);
  });

  it('refuses the agent every admin route with 403 naming the rule, whatever it asks', async () => {
    const agentToken = (await tokenFor(bot.apiKey)).json.accessToken;
    const probes: Array<[string, string, unknown, string]> = [
      ['POST', '/v1/agents', { name: 'spawn', teamId: 'platform', parentAgentId: bot.agentId }, 'agents'],
      ['POST', `/v1/agents/${bot.agentId}/keys`, { name: 'more', scopes: [] }, 'agents'],
      ['POST', `/v1/agents/${bot.agentId}/resume`, undefined, 'agents'],
      ['GET', '/v1/users', undefined, 'users and roles'],
      ['PUT', `/v1/users/${aliceId}/roles`, { roles: ['admin'] }, 'users and roles'],
      ['POST', '/v1/teams', { teamId: 'bots', name: 'Bots' }, 'teams'],
      ['PUT', `/v1/teams/platform/members/${aliceId}`, undefined, 'teams'],
      ['PUT', '/v1/identity-providers/corp', { type: 'oidc', oidc: { issuer: 'https://idp.example', clientId: 'x' } }, 'identity providers'],
      ['POST', '/v1/api-keys', { name: 'x', scopes: [] }, 'API keys'],
      ['PUT', '/v1/tenant/mfa', { required: false }, 'tenant settings'],
      ['POST', '/v1/tenants', { tenantId: 'evil', name: 'Evil', admin: { username: 'e', password: ROOT_PASSWORD } }, 'tenants'],
      ['POST', '/v1/signing-keys/rotate', undefined, 'signing keys'],
    ];
    for (const [method, path, body, what] of probes) {
      const res = await call(path, { method, token: agentToken, ...(body === undefined ? {} : { body }) });
      expect([method, path, res.status, res.json?.error?.message]).toEqual([method, path, 403, `agents cannot administer ${what} (rule agents-administer-nothing)`]);
    }
    expect((await events(tenant)).filter((e) => e.actor.type === 'agent' && e.type !== 'auth.agent-token.issued')).toEqual([]);
  });

  it('registers a subagent (people only), which cannot have subagents of its own', async () => {
    const sub = await call('/v1/agents', { token: alice, body: { name: 'release-bot.helper', parentAgentId: bot.agentId } });
    expect(sub.status).toBe(201);
    expect(sub.json).toMatchObject({ parentAgentId: bot.agentId, ownerId: aliceId, teamId: 'platform' });
    const key = await call(`/v1/agents/${sub.json.agentId}/keys`, { token: alice, body: { name: 'k', scopes: ['audit:read'] } });
    helper = { agentId: sub.json.agentId, keyId: key.json.keyId, apiKey: key.json.apiKey };
    const subToken = await tokenFor(helper.apiKey);
    expect(decodeJwt(subToken.json.accessToken)).toMatchObject({ sub: helper.agentId, act: { sub: aliceId }, teams: ['platform'] });
    // Neither the subagent itself nor its owner can go a level deeper.
    const bySub = await call('/v1/agents', { token: subToken.json.accessToken, body: { name: 'deeper', parentAgentId: helper.agentId } });
    expect([bySub.status, bySub.json.error.message]).toEqual([403, expect.stringContaining('agents cannot administer agents')]);
    const byAlice = await call('/v1/agents', { token: alice, body: { name: 'deeper', parentAgentId: helper.agentId } });
    expect([byAlice.status, byAlice.json.error.message]).toEqual([403, 'a subagent cannot have subagents: agents are one level deep']);
  });

  it('probes from another tenant find no team, agent, key or guide of this one (404, no data)', async () => {
    const foreign = [bot.agentId, helper.agentId, bot.keyId, aliceId, 'release-bot', 'Platform Engineering', 'Only query Gerrit'];
    expectProbe(await call('/v1/teams/platform', { token: rival }), 404, foreign);
    expectProbe(await call('/v1/teams', { token: rival }), 200, foreign);
    expectProbe(await call('/v1/teams/platform', { method: 'PUT', token: rival, body: { name: 'Mine now' } }), 404, foreign);
    expectProbe(await call('/v1/teams/platform/archive', { method: 'POST', token: rival }), 404, foreign);
    expectProbe(await call(`/v1/teams/platform/members/${aliceId}`, { method: 'DELETE', token: rival }), 404, foreign);
    expectProbe(await call('/v1/agents', { token: rival }), 200, foreign);
    for (const [method, path, body] of [
      ['GET', `/v1/agents/${bot.agentId}`, undefined],
      ['POST', `/v1/agents/${bot.agentId}/suspend`, undefined],
      ['POST', `/v1/agents/${bot.agentId}/retire`, undefined],
      ['GET', `/v1/agents/${bot.agentId}/keys`, undefined],
      ['POST', `/v1/agents/${bot.agentId}/keys`, { name: 'x', scopes: [] }],
      ['POST', `/v1/agents/${bot.agentId}/keys/${bot.keyId}/rotate`, {}],
      ['POST', `/v1/agents/${bot.agentId}/keys/${bot.keyId}/revoke`, undefined],
      ['GET', `/v1/agents/${bot.agentId}/guide`, undefined],
      ['PUT', `/v1/agents/${bot.agentId}/guide`, { text: 'hijacked' }],
      ['POST', `/v1/api-keys/${bot.keyId}/revoke`, undefined],
    ] as const) {
      expectProbe(await call(path, { method, token: rival, ...(body === undefined ? {} : { body }) }), 404, foreign);
    }
    // A subagent of another tenant's agent: its parent is not found.
    expectProbe(await call('/v1/agents', { token: rival, body: { name: 'x', parentAgentId: bot.agentId } }), 404, foreign);
    // The rival's own team of the same id is its own.
    expect((await call('/v1/teams', { token: rival, body: { teamId: 'platform', name: 'Rival platform' } })).status).toBe(201);
    expect((await call('/v1/teams/platform', { token: root })).json.name).toBe('Platform Engineering');
    expect((await events(otherTenant)).map((e) => e.type).filter((t) => t.startsWith('auth.agent') || t.startsWith('auth.team-member'))).toEqual([]);
    // Nothing happened to this tenant's agent.
    expect((await tokenFor(bot.apiKey)).status).toBe(200);
    expect((await call(`/v1/agents/${bot.agentId}/guide`, { token: alice })).json.text).toBe('Only query Gerrit. Never merge.');
  });

  it('alice loses a role: her agent’s tokens so far are refused, a new one has fewer scopes', async () => {
    const before = (await tokenFor(bot.apiKey)).json.accessToken;
    expect(decodeJwt(before).scp).toEqual(['audit:read']);
    expect((await call(`/v1/users/${aliceId}/roles`, { method: 'PUT', token: root, body: { roles: ['member'] } })).status).toBe(204);
    await eventually(() => refusedBy(before, 'acting user revoked'), 1000, 10);
    const after = await tokenFor(bot.apiKey);
    expect(after.status).toBe(200);
    expect(decodeJwt(after.json.accessToken).scp).toEqual([]);
    await expect(policy.verify(after.json.accessToken)).resolves.toBeDefined();
    alice = (await signIn(tenant, 'alice', ALICE_PASSWORD)).json.accessToken;
  });

  it('suspending the agent makes its token (and its subagent’s) refused by another service within 1 s (measured); resuming gives new ones', async () => {
    const token = (await tokenFor(bot.apiKey)).json.accessToken;
    const subToken = (await tokenFor(helper.apiKey)).json.accessToken;
    await policy.verify(token);
    await policy.verify(subToken);
    const started = Date.now();
    expect((await call(`/v1/agents/${bot.agentId}/suspend`, { method: 'POST', token: alice })).status).toBe(204);
    await eventually(() => refusedBy(token, 'principal revoked'), 1000, 5);
    const latency = Date.now() - started;
    console.log(`agent token revocation latency: ${latency} ms`);
    expect(latency).toBeLessThan(1000);
    await eventually(() => refusedBy(subToken, 'principal revoked'), 1000, 10);
    expect((await tokenFor(bot.apiKey)).status).toBe(401);
    expect((await tokenFor(helper.apiKey)).status).toBe(401);
    expect((await call(`/v1/agents/${bot.agentId}`, { token: alice })).json.status).toBe('suspended');
    expect((await call(`/v1/agents/${bot.agentId}/resume`, { method: 'POST', token: alice })).status).toBe(204);
    const fresh = await tokenFor(bot.apiKey);
    expect(fresh.status).toBe(200);
    await expect(policy.verify(fresh.json.accessToken)).resolves.toBeDefined();
    await expect(policy.verify(token)).rejects.toThrow('principal revoked');
    // The subagent stays suspended until someone resumes it.
    expect((await tokenFor(helper.apiKey)).status).toBe(401);
  });

  it('a team with live agents is not archived; a retired agent is refused for good', async () => {
    expect((await call('/v1/teams/platform/archive', { method: 'POST', token: root })).status).toBe(409);
    const token = (await tokenFor(bot.apiKey)).json.accessToken;
    expect((await call(`/v1/agents/${bot.agentId}/retire`, { method: 'POST', token: alice })).status).toBe(204);
    await eventually(() => refusedBy(token, 'principal revoked'), 1000, 10);
    expect((await call(`/v1/agents/${bot.agentId}/resume`, { method: 'POST', token: alice })).status).toBe(409);
    expect((await tokenFor(bot.apiKey)).status).toBe(401);
    // The name is free again once its agent is retired.
    expect((await call('/v1/agents', { token: alice, body: { name: 'release-bot', teamId: 'platform' } })).status).toBe(201);
  });

  it('disabling the owner revokes her agents’ tokens everywhere and stops their keys', async () => {
    const reg = await call('/v1/agents', { token: alice, body: { name: 'nightly-bot', teamId: 'platform' } });
    const key = await call(`/v1/agents/${reg.json.agentId}/keys`, { token: alice, body: { name: 'k', scopes: [] } });
    const token = (await tokenFor(key.json.apiKey)).json.accessToken;
    await policy.verify(token);
    expect((await call(`/v1/users/${aliceId}/disable`, { method: 'POST', token: root })).status).toBe(204);
    await eventually(() => refusedBy(token, 'acting user revoked'), 1000, 10);
    expect((await tokenFor(key.json.apiKey)).status).toBe(401);
  });

  it('records every step as an event, classified in the audit table', async () => {
    const types = new Set((await events(tenant)).map((e) => e.type));
    for (const t of [
      'auth.team.created',
      'auth.team.renamed',
      'auth.team-member.added',
      'auth.agent.registered',
      'auth.agent.suspended',
      'auth.agent.resumed',
      'auth.agent.retired',
      'auth.agent-guide.changed',
      'auth.agent-token.issued',
      'auth.api-key.created',
      'auth.revocation.issued',
    ]) {
      expect([t, types.has(t)]).toEqual([t, true]);
    }
    const suspensions = (await events(tenant)).filter((e) => e.type === 'auth.agent.suspended').map((e) => e.data);
    expect(suspensions).toEqual(expect.arrayContaining([{ agentId: bot.agentId, cause: 'person' }, { agentId: helper.agentId, cause: 'parent' }]));
  });
});
