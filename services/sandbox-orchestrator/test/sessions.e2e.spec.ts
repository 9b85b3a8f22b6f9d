import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { eventually, httpsCaller, infra, TestTokenIssuer, type CallOptions, type Reply } from '@palisade/testing';

// The built sandbox-orchestrator and policy services (offset 8600: 15704 and 15702) on
// their own databases, the orchestrator asking the policy service over NATS (mTLS).
// Tokens are signed by keys of our own, which both verify through AUTH_JWKS: one key
// for the orchestrator's audience (people and agents calling it), one for the policy's
// (its administrator). Agent tokens carry act = { sub: <user> } (RFC 8693).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 8600;
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a policy or
// billing instance of another suite on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = 'e2e8600';
const ORCHESTRATOR = 7104 + OFFSET;
const POLICY = 7102 + OFFSET;

const tenant = `s-${randomBytes(4).toString('hex')}`;
const other = `o-${randomBytes(4).toString('hex')}`;

describe('sandbox-orchestrator sessions (with the policy service)', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  const t: Record<string, string> = {};
  let policyAdmin: string;
  const orchestrator = (path: string, token: string, options: CallOptions = {}) => httpsCaller(ORCHESTRATOR)(path, { token, ...options });
  const policy = (path: string, options: CallOptions) => httpsCaller(POLICY)(path, { token: policyAdmin, ...options });
  const message = (r: Reply) => String(r.json?.error?.message ?? '');

  beforeAll(async () => {
    const users = await TestTokenIssuer.create(audienceOf('sandbox-orchestrator'));
    const admins = await TestTokenIssuer.create(audienceOf('policy'));
    const jwks = JSON.stringify({ keys: [users, admins].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
    handles = runner.startServices({
      services: ['policy', 'sandbox-orchestrator'],
      portOffset: OFFSET,
      logDir: join(infra('PALISADE_HOME'), 'logs', 'sessions-e2e'),
      env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn' },
    });
    await runner.waitReady(handles, { timeoutMs: 120000 });
    for (const id of ['alice', 'bob', 'carol', 'dave']) t[id] = await users.token({ sub: id, tid: tenant, ptp: 'user' });
    t.mallory = await users.token({ sub: 'mallory', tid: other, ptp: 'user' });
    t.botForBob = await users.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'bob' } });
    t.botForCarol = await users.token({ sub: 'viewer-bot', tid: tenant, ptp: 'agent', act: { sub: 'carol' } });
    t.strayBot = await users.token({ sub: 'stray-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    policyAdmin = await admins.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });
  }, 180000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
  });

  let id: string;
  const path = (...rest: string[]) => ['/v1/sessions', id, ...rest].join('/');

  it('lets a person open a session they own, and share it with a collaborator and a viewer', async () => {
    const created = await orchestrator('/v1/sessions', t.alice, { method: 'POST', body: {} });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ owner: 'alice', collaborators: [], viewers: [], agents: [], status: 'active', etag: 1 });
    expect(created.headers.etag).toBe('"1"');
    id = created.json.id;
    const bob = await orchestrator(path('members', 'bob'), t.alice, { method: 'PUT', body: { role: 'collaborator' } });
    expect(bob.status).toBe(200);
    const carol = await orchestrator(path('members', 'carol'), t.alice, { method: 'PUT', body: { role: 'viewer' }, headers: { 'if-match': bob.headers.etag as string } });
    expect(carol.status).toBe(200);
    expect(carol.json).toMatchObject({ collaborators: ['bob'], viewers: ['carol'], etag: 3 });
    // agents do not open sessions
    const byAgent = await orchestrator('/v1/sessions', t.botForBob, { method: 'POST', body: {} });
    expect(byAgent.status).toBe(403);
  });

  it('lets the owner, the collaborator and the viewer read; anyone else, in this tenant or another, gets 404', async () => {
    for (const who of ['alice', 'bob', 'carol']) expect((await orchestrator(path(), t[who])).status).toBe(200);
    const unknown = await orchestrator(`/v1/sessions/${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)}`, t.alice);
    for (const r of [await orchestrator(path(), t.dave), await orchestrator(path(), t.mallory), unknown]) {
      expect(r.status).toBe(404);
      expect(r.json.error).toMatchObject({ code: 'not_found', message: 'session not found' });
      expect(r.body).not.toContain('alice');
    }
    // lists hold exactly what the caller may read
    expect((await orchestrator('/v1/sessions', t.bob)).json.items.map((s: { id: string }) => s.id)).toContain(id);
    expect((await orchestrator('/v1/sessions', t.carol)).json.items.map((s: { id: string }) => s.id)).toContain(id);
    expect((await orchestrator('/v1/sessions', t.dave)).json.items).toEqual([]);
    expect((await orchestrator('/v1/sessions', t.mallory)).json.items).toEqual([]);
  });

  it('lets the collaborator write (agents join) but not share or archive; the viewer only reads; strangers get 404 for changes too', async () => {
    const joined = await orchestrator(path('agents', 'release-bot'), t.bob, { method: 'PUT' });
    expect(joined.status).toBe(200);
    expect(joined.json.agents).toEqual(['release-bot']);
    const byViewer = await orchestrator(path('agents', 'viewer-bot'), t.carol, { method: 'PUT' });
    expect(byViewer.status).toBe(403);
    expect(message(byViewer)).toBe('policy denies write (rule default-deny): no rule allows this');
    const shareByCollaborator = await orchestrator(path('members', 'dave'), t.bob, { method: 'PUT', body: { role: 'viewer' } });
    expect(shareByCollaborator.status).toBe(403);
    expect(message(shareByCollaborator)).toContain('policy denies share');
    expect((await orchestrator(path('members', 'carol'), t.bob, { method: 'DELETE' })).status).toBe(403);
    for (const who of ['bob', 'carol']) {
      const archive = await orchestrator(path('archive'), t[who], { method: 'POST' });
      expect(archive.status).toBe(403);
      expect(message(archive)).toContain('policy denies archive');
    }
    // every route, probed by a stranger of this tenant and by another tenant's user: 404 and no data
    for (const who of ['dave', 'mallory']) {
      for (const [route, options] of [
        [path('archive'), { method: 'POST' }],
        [path('members', who), { method: 'PUT', body: { role: 'collaborator' } }],
        [path('members', 'carol'), { method: 'DELETE' }],
        [path('agents', 'their-bot'), { method: 'PUT' }],
        [path('agents', 'release-bot'), { method: 'DELETE' }],
      ] as const) {
        const probe = await orchestrator(route, t[who], options as CallOptions);
        expect(probe.status).toBe(404);
        expect(probe.body).not.toMatch(/alice|bob|carol|release-bot/);
      }
    }
    expect((await orchestrator(path(), t.alice)).json).toMatchObject({ status: 'active', collaborators: ['bob'], viewers: ['carol'], agents: ['release-bot'] });
  });

  it("gives an agent in the session its user's role at most, decided by the policy service from the agent's token", async () => {
    expect((await orchestrator(path('agents', 'viewer-bot'), t.alice, { method: 'PUT' })).status).toBe(200);
    // release-bot acts for bob (collaborator): reads and writes; viewer-bot acts for carol (viewer): reads only
    expect((await orchestrator(path(), t.botForBob)).status).toBe(200);
    expect((await orchestrator(path(), t.botForCarol)).status).toBe(200);
    expect((await orchestrator(path('agents', 'helper-bot'), t.botForBob, { method: 'PUT' })).status).toBe(200);
    const viewerBotWrites = await orchestrator(path('agents', 'another-bot'), t.botForCarol, { method: 'PUT' });
    expect(viewerBotWrites.status).toBe(403);
    expect(message(viewerBotWrites)).toContain('the user the agent acts for may not');
    // no agent shares or archives, even acting for the owner; an agent not in the session sees nothing
    expect((await orchestrator(path('archive'), t.botForBob, { method: 'POST' })).status).toBe(403);
    expect((await orchestrator(path(), t.strayBot)).status).toBe(404);
    expect((await orchestrator('/v1/sessions', t.botForBob)).json.items.map((s: { id: string }) => s.id)).toEqual([id]);
    expect((await orchestrator(path('agents', 'helper-bot'), t.bob, { method: 'DELETE' })).json.agents).toEqual(['release-bot', 'viewer-bot']);
  });

  it("enforces the tenant's own policy too: an explicit deny in the policy service wins over a session role", async () => {
    const denied = await policy('/v1/policies/sessions', { method: 'PUT', body: { rules: [{ id: 'bob-read-only', effect: 'deny', subject: 'user:bob', resource: 'session', action: 'write' }] } });
    expect(denied.status).toBe(200);
    // the orchestrator's decision cache is dropped by the policy event (JetStream)
    await eventually(async () => (await orchestrator(path('agents', 'late-bot'), t.bob, { method: 'PUT' })).status === 403, 5000, 100);
    expect(message(await orchestrator(path('agents', 'late-bot'), t.bob, { method: 'PUT' }))).toBe('policy denies write (rule sessions/bob-read-only): denied by rule sessions/bob-read-only');
    expect((await policy('/v1/policies/sessions', { method: 'DELETE' })).status).toBe(200);
  });

  it('refuses a stale If-Match, lets only the owner unshare and archive, and keeps an archived session read-only', async () => {
    const stale = await orchestrator(path('members', 'dave'), t.alice, { method: 'PUT', body: { role: 'viewer' }, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(409);
    const unshared = await orchestrator(path('members', 'carol'), t.alice, { method: 'DELETE' });
    expect(unshared.status).toBe(200);
    expect(unshared.json.viewers).toEqual([]);
    expect((await orchestrator(path(), t.carol)).status).toBe(404);
    const archived = await orchestrator(path('archive'), t.alice, { method: 'POST' });
    expect(archived.status).toBe(200);
    expect(archived.json).toMatchObject({ status: 'archived', archivedAt: expect.any(String) });
    expect((await orchestrator(path(), t.bob)).status).toBe(200);
    const afterwards = await orchestrator(path('members', 'dave'), t.alice, { method: 'PUT', body: { role: 'viewer' } });
    expect(afterwards.status).toBe(409);
    expect(message(afterwards)).toBe('session is archived');
  });

  it('answers bad input with a 400 naming the field, and unauthenticated callers with 401', async () => {
    const role = await orchestrator(path('members', 'dave'), t.alice, { method: 'PUT', body: { role: 'owner' } });
    expect(role.status).toBe(400);
    expect(message(role)).toMatch(/^role:/);
    const badId = await orchestrator('/v1/sessions/not-a-session', t.alice);
    expect(badId.status).toBe(400);
    expect(message(badId)).toMatch(/^id:/);
    const badUser = await orchestrator(path('members', '%20x'), t.alice, { method: 'PUT', body: { role: 'viewer' } });
    expect(badUser.status).toBe(400);
    expect((await orchestrator('/v1/sessions', t.alice, { method: 'POST', body: { owner: 'bob' } })).status).toBe(400);
    expect((await httpsCaller(ORCHESTRATOR)('/v1/sessions')).status).toBe(401);
  });
});
