import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { decodeJwt } from 'jose';
import { infra, startSealPersonalStandIn } from '@palisade/testing';
import { totpCode } from '../src/mfa/totp';
import { httpsCaller, type CallOptions, type Reply } from './e2e-support';

// Two tenants in one auth service (port 13901, offset 6800, a schema of its own): A by the
// bootstrap, whose administrator is the platform operator; B through POST /v1/tenants.
// Then every auth endpoint that takes an id or acts on tenant data is probed with the
// other tenant's ids and tokens: the answer is the caller's own namespace or a 404, and
// no data of the other tenant appears in any body.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 13901;
const schema = `auth_tenants_${randomBytes(4).toString('hex')}`;
const A = `tna-${randomBytes(3).toString('hex')}`;
const B = `tnb-${randomBytes(3).toString('hex')}`;
const A_PASSWORD = 'Alpha-Admin-Pass-1234';
const B_PASSWORD = 'Bravo-Admin-Pass-5678';
const MEMBER_PASSWORD = 'Member-Password-9012';

const signIn = (t: string, username: string, password: string) => call(`/v1/tenants/${t}/sign-in`, { body: { username, password } });
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_auth', user: 'palisade_auth_owner' });

let handles: Array<{ stop(): Promise<unknown> }> = [];
/** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
let bootstrapToken = '';

/** What tenant B holds that A must never see (filled as the test goes). */
const bData: string[] = [];
/** And the other way round. */
const aData: string[] = [];

/**
 * The status, and none of the other tenant's identifiers in the body (an id the caller
 * put in the path may be echoed back: that tells nothing).
 */
function expectProbe(reply: Reply & { path: string }, status: number, foreign: readonly string[]) {
  expect({ status: reply.status, body: reply.body }).toEqual({ status, body: expect.any(String) });
  for (const marker of foreign) if (!reply.path.includes(marker)) expect(reply.body).not.toContain(marker);
}

const call = async (path: string, o?: CallOptions): Promise<Reply & { path: string }> => ({ ...(await httpsCaller(PORT)(path, o)), path });

const ldapProvider = (host: string) => ({
  type: 'ldap',
  ldap: { url: `ldaps://${host}:636`, bindDn: 'cn=svc,dc=example,dc=com', userBaseDn: 'ou=people,dc=example,dc=com', groupBaseDn: 'ou=groups,dc=example,dc=com' },
  secret: `bind-${host}`,
});

beforeAll(async () => {
  const c = owner();
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const dir = mkdtempSync(join(tmpdir(), 'auth-tenants-e2e-'));
  bootstrapToken = randomBytes(32).toString('base64url');
  writeFileSync(join(dir, 'bootstrap.token'), bootstrapToken, { mode: 0o600 });
  sealing = await startSealPersonalStandIn();
  handles = runner.startServices({
    services: ['auth'],
    portOffset: 6800,
    logDir: join(infra('PALISADE_HOME'), 'logs', 'auth-tenants-e2e'),
    env: {
      LOG_LEVEL: 'warn',
      PG_SCHEMA: schema,
      AUTH_JWKS_URL: `https://127.0.0.1:${PORT}/.well-known/jwks.json`,
      AUTH_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.token'),
    },
  });
  await runner.waitReady(handles, { timeoutMs: 90000 });
}, 120000);

afterAll(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await sealing?.stop();
  const c = owner();
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
});

async function eventsOf(type: string, tenant: string) {
  const c = owner();
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT envelope FROM ${schema}.events WHERE event_type = $1 AND tenant_id = $2`, [type, tenant]);
    return rows.map((r) => r.envelope);
  } finally {
    await c.end();
  }
}

// State shared by the steps below, in order.
const a = { adminId: '', token: '', memberId: '', sessionId: '', keyId: '', apiKey: '' };
const b = { adminId: '', token: '', refreshToken: '', memberId: '', sessionId: '', memberRefresh: '', keyId: '', apiKey: '', saKeyId: '', totpSecret: '' };

describe('platform operator', () => {
  it('the bootstrap administrator of tenant A holds platform:admin; nobody else does', async () => {
    const boot = await call('/v1/bootstrap', {
      body: { tenantId: A, tenantName: 'Alpha', admin: { username: 'root@alpha.example', password: A_PASSWORD } },
      headers: { authorization: `Bootstrap ${bootstrapToken}` },
    });
    expect(boot.status).toBe(201);
    a.adminId = boot.json.adminUserId;
    const s = await signIn(A, 'root@alpha.example', A_PASSWORD);
    expect(s.status).toBe(200);
    a.token = s.json.accessToken;
    expect(decodeJwt(a.token)).toMatchObject({ tid: A, scp: expect.arrayContaining(['auth:admin', 'platform:admin']) });
    const listed = await call('/v1/tenants', { token: a.token });
    expect(listed.status).toBe(200);
    expect(listed.json).toEqual([{ tenantId: A, name: 'Alpha' }]);
  });

  it('creates tenant B with its first administrator through POST /v1/tenants, validated', async () => {
    const body = { tenantId: B, name: 'Bravo', admin: { username: 'boss@bravo.example', email: 'boss@bravo.example', password: B_PASSWORD } };
    const bad = await call('/v1/tenants', { body: { ...body, tenantId: 'no spaces/here' }, token: a.token });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('tenantId');
    const extra = await call('/v1/tenants', { body: { ...body, admin: { ...body.admin, roles: ['platform-admin'] } }, token: a.token });
    expect(extra.status).toBe(400);
    expect(extra.json.error.message).toContain('roles');
    const weak = await call('/v1/tenants', { body: { ...body, tenantId: `${B}-weak`, admin: { username: 'w', password: 'short' } }, token: a.token });
    expect(weak.status).toBe(400);
    expect(weak.json.error.message).toContain('admin.password');
    expect(weak.body).not.toContain('short');
    for (const reserved of ['system', 'platform', 'admin', 'palisade', 'default', 'root', 'internal']) {
      const refused = await call('/v1/tenants', { body: { ...body, tenantId: reserved }, token: a.token });
      expect(refused.status).toBe(400);
      expect(refused.json.error.message).toBe(`tenantId: "${reserved}" is reserved`);
    }
    // Refused before anything was written: no tenant without its administrator.
    expect((await call('/v1/tenants', { token: a.token })).json.map((t: { tenantId: string }) => t.tenantId)).toEqual([A]);
    expect((await call('/v1/tenants', { token: a.token, body: {} })).status).toBe(400);

    const created = await call('/v1/tenants', { body, token: a.token });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ tenantId: B, adminUserId: expect.any(String) });
    b.adminId = created.json.adminUserId;
    expect((await call('/v1/tenants', { body, token: a.token })).status).toBe(409);
    expect((await call('/v1/tenants', { body: { ...body, tenantId: A }, token: a.token })).status).toBe(409);
    expect((await call('/v1/tenants', { token: a.token })).json).toEqual([
      { tenantId: A, name: 'Alpha' },
      { tenantId: B, name: 'Bravo' },
    ]);
    // Audited: created in B's stream by A's operator, without the password.
    const [event] = await eventsOf('auth.tenant.created', B);
    expect(event).toMatchObject({ tenantId: B, actor: { type: 'user', id: a.adminId }, data: { tenantId: B, name: 'Bravo' } });
    const registered = await eventsOf('auth.user.registered', B);
    expect(registered.map((e) => e.data)).toEqual([{ userId: b.adminId, roles: ['admin'] }]);
    expect(JSON.stringify([event, registered])).not.toContain(B_PASSWORD);
  });

  it('creates a tenant once when two operators’ requests race: one 201, the other 409, one administrator', async () => {
    const C = `${B}-race`;
    const body = (n: number) => ({ tenantId: C, name: 'Race', admin: { username: `first-${n}@race.example`, password: B_PASSWORD } });
    const replies = await Promise.all([0, 1, 2].map((n) => call('/v1/tenants', { body: body(n), token: a.token })));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    const registered = await eventsOf('auth.user.registered', C);
    expect(registered).toHaveLength(1);
    expect(registered[0].data.userId).toBe(replies.find((r) => r.status === 201)!.json.adminUserId);
  });

  it('B’s administrator is a tenant administrator only: 403 on the platform routes', async () => {
    const s = await signIn(B, 'boss@bravo.example', B_PASSWORD);
    expect(s.status).toBe(200);
    b.token = s.json.accessToken;
    b.refreshToken = s.json.refreshToken;
    const claims = decodeJwt(b.token);
    expect(claims).toMatchObject({ tid: B, scp: ['auth:admin', 'policy:admin', 'audit:admin', 'agents:manage'] });
    expect((await call('/v1/tenants', { token: b.token })).status).toBe(403);
    const post = await call('/v1/tenants', { body: { tenantId: `${B}-x`, name: 'X', admin: { username: 'x', password: B_PASSWORD } }, token: b.token });
    expect(post.status).toBe(403);
    expect((await call('/v1/tenants')).status).toBe(401);
    // B's administrator cannot mint the scope into a key of theirs either.
    expect((await call('/v1/api-keys', { body: { name: 'p', scopes: ['platform:admin'] }, token: b.token })).status).toBe(403);
  });

  it('an API key never carries platform:admin, even the operator’s own', async () => {
    expect((await call('/v1/api-keys', { body: { name: 'op', scopes: ['platform:admin'] }, token: a.token })).status).toBe(403);
    expect((await call('/v1/api-keys', { body: { name: 'sa', scopes: ['platform:admin'], serviceAccount: 'ops' }, token: a.token })).status).toBe(403);
    const key = await call('/v1/api-keys', { body: { name: 'ci', scopes: ['auth:admin'] }, token: a.token });
    expect(key.status).toBe(201);
    a.keyId = key.json.keyId;
    a.apiKey = key.json.apiKey;
    aData.push(a.keyId);
    const exchanged = await call('/v1/tokens/api-key', { body: { apiKey: a.apiKey } });
    expect(exchanged.status).toBe(200);
    expect(decodeJwt(exchanged.json.accessToken)).toMatchObject({ tid: A, scp: ['auth:admin'], sid: `apikey-${a.keyId}` });
    expect((await call('/v1/tenants', { token: exchanged.json.accessToken })).status).toBe(403);
  });
});

describe('cross-tenant probes', () => {
  it('sets up data in both tenants', async () => {
    aData.push(A, 'root@alpha.example', a.adminId, 'alpha-only', 'ldap-a.example');
    bData.push(B, 'boss@bravo.example', b.adminId, 'bravo-only', 'ldap-b.example');
    // Same username in both: each tenant is its own namespace.
    const am = await call('/v1/users', { body: { username: 'member', email: 'member@alpha.example', password: MEMBER_PASSWORD }, token: a.token });
    const bm = await call('/v1/users', { body: { username: 'member', email: 'member@bravo.example', password: MEMBER_PASSWORD }, token: b.token });
    expect([am.status, bm.status]).toEqual([201, 201]);
    a.memberId = am.json.userId;
    b.memberId = bm.json.userId;
    aData.push(a.memberId, 'member@alpha.example');
    bData.push(b.memberId, 'member@bravo.example');
    const as = await signIn(A, 'member', MEMBER_PASSWORD);
    const bs = await signIn(B, 'member', MEMBER_PASSWORD);
    expect([as.status, bs.status]).toEqual([200, 200]);
    expect(decodeJwt(as.json.accessToken).tid).toBe(A);
    expect(decodeJwt(bs.json.accessToken).tid).toBe(B);
    a.sessionId = as.json.sessionId;
    b.sessionId = bs.json.sessionId;
    b.memberRefresh = bs.json.refreshToken;
    aData.push(a.sessionId);
    bData.push(b.sessionId);
    // B's member enrols a second factor (so a reset from A would show).
    const begun = await call('/v1/me/mfa/totp', { method: 'POST', token: bs.json.accessToken });
    expect(begun.status).toBe(200);
    b.totpSecret = begun.json.secret;
    expect((await call('/v1/me/mfa/totp/confirm', { body: { code: totpCode(b.totpSecret, new Date()) }, token: bs.json.accessToken })).status).toBe(200);
    const bk = await call('/v1/api-keys', { body: { name: 'bravo-ci', scopes: ['auth:admin'] }, token: b.token });
    const bsa = await call('/v1/api-keys', { body: { name: 'bravo-bot', serviceAccount: 'bravo-bot' }, token: b.token });
    expect([bk.status, bsa.status]).toEqual([201, 201]);
    b.keyId = bk.json.keyId;
    b.apiKey = bk.json.apiKey;
    b.saKeyId = bsa.json.keyId;
    bData.push(b.keyId, b.saKeyId, 'bravo-ci', 'bravo-bot');
    for (const [token, id, host] of [
      [a.token, 'alpha-only', 'ldap-a.example'],
      [b.token, 'bravo-only', 'ldap-b.example'],
      [b.token, 'shared-name', 'ldap-b.example'],
    ]) {
      expect((await call(`/v1/identity-providers/${id}`, { method: 'PUT', body: ldapProvider(host), token })).status).toBe(200);
    }
  });

  it('users: the list shows only the caller’s tenant; revoke-sessions, disable and MFA reset of the other’s users are 404', async () => {
    const listA = await call('/v1/users', { token: a.token });
    expectProbe(listA, 200, bData);
    expect(listA.json.map((u: { userId: string }) => u.userId).sort()).toEqual([a.adminId, a.memberId].sort());
    expectProbe(await call('/v1/users', { token: b.token }), 200, aData);
    for (const id of [b.adminId, b.memberId]) {
      for (const action of ['revoke-sessions', 'disable', 'mfa/reset']) {
        expectProbe(await call(`/v1/users/${id}/${action}`, { method: 'POST', token: a.token }), 404, bData);
      }
    }
    for (const action of ['revoke-sessions', 'disable', 'mfa/reset']) {
      expectProbe(await call(`/v1/users/${a.memberId}/${action}`, { method: 'POST', token: b.token }), 404, aData);
    }
    // Nothing happened to B: its admin's token still lists, its member still needs the second factor.
    expect((await call('/v1/users', { token: b.token })).status).toBe(200);
    expect((await signIn(B, 'member', MEMBER_PASSWORD)).json.status).toBe('mfa_required');
    expect(await eventsOf('auth.user.disabled', B)).toEqual([]);
    expect(await eventsOf('auth.user.sessions-revoked', B)).toEqual([]);
    expect(await eventsOf('auth.user.mfa-reset', B)).toEqual([]);
  });

  it('sessions: revoking B’s session from A is 404, and B’s refresh token keeps working (for B only)', async () => {
    expectProbe(await call(`/v1/sessions/${b.sessionId}/revoke`, { method: 'POST', token: a.token }), 404, bData);
    expectProbe(await call(`/v1/sessions/${a.sessionId}/revoke`, { method: 'POST', token: b.token }), 404, aData);
    const refreshed = await call('/v1/token/refresh', { body: { refreshToken: b.memberRefresh } });
    expectProbe(refreshed, 200, aData);
    expect(decodeJwt(refreshed.json.accessToken)).toMatchObject({ tid: B, sub: b.memberId, sid: b.sessionId, scp: ['agents:manage'] });
    expect(await eventsOf('auth.user.session-revoked', B)).toEqual([]);
  });

  it('API keys: list shows the caller’s tenant only; rotate and revoke of the other’s keys are 404; a key buys a token of its own tenant', async () => {
    const listA = await call('/v1/api-keys', { token: a.token });
    expectProbe(listA, 200, bData);
    expect(listA.json.map((k: { keyId: string }) => k.keyId)).toEqual([a.keyId]);
    expectProbe(await call('/v1/api-keys', { token: b.token }), 200, aData);
    for (const id of [b.keyId, b.saKeyId]) {
      expectProbe(await call(`/v1/api-keys/${id}/rotate`, { body: { overlapSec: 0 }, token: a.token }), 404, bData);
      expectProbe(await call(`/v1/api-keys/${id}/revoke`, { method: 'POST', token: a.token }), 404, bData);
    }
    expectProbe(await call(`/v1/api-keys/${a.keyId}/revoke`, { method: 'POST', token: b.token }), 404, aData);
    // A token bought with A's key acts in A only; B's key still works, for B.
    const aKeyToken = (await call('/v1/tokens/api-key', { body: { apiKey: a.apiKey } })).json.accessToken;
    expect(decodeJwt(aKeyToken).tid).toBe(A);
    expectProbe(await call(`/v1/api-keys/${b.keyId}/revoke`, { method: 'POST', token: aKeyToken }), 404, bData);
    expectProbe(await call('/v1/users', { token: aKeyToken }), 200, bData);
    const bKey = await call('/v1/tokens/api-key', { body: { apiKey: b.apiKey } });
    expectProbe(bKey, 200, aData);
    expect(decodeJwt(bKey.json.accessToken)).toMatchObject({ tid: B, sub: b.adminId });
    expect(await eventsOf('auth.api-key.revoked', B)).toEqual([]);
    expect(await eventsOf('auth.api-key.rotated', B)).toEqual([]);
  });

  it('identity providers: another tenant’s provider id is a 404 to read or delete, and a PUT lands in the caller’s own namespace', async () => {
    const listA = await call('/v1/identity-providers', { token: a.token });
    expectProbe(listA, 200, bData);
    expect(listA.json.map((p: { providerId: string }) => p.providerId)).toEqual(['alpha-only']);
    aData.push('alpha-saml', 'alpha-oidc', 'idp.alpha.example');
    expectProbe(await call('/v1/identity-providers/bravo-only', { token: a.token }), 404, bData);
    expectProbe(await call('/v1/identity-providers/bravo-only', { method: 'DELETE', token: a.token }), 404, bData);
    expectProbe(await call('/v1/identity-providers/alpha-only', { token: b.token }), 404, aData);
    expectProbe(await call('/v1/identity-providers/alpha-only', { method: 'DELETE', token: b.token }), 404, aData);
    // A configures "shared-name" too: its own provider; B's is untouched, then A removes its own.
    expectProbe(await call('/v1/identity-providers/shared-name', { method: 'PUT', body: ldapProvider('ldap-a.example'), token: a.token }), 200, bData);
    const bShared = await call('/v1/identity-providers/shared-name', { token: b.token });
    expect(bShared.json.settings.ldap.url).toBe('ldaps://ldap-b.example:636');
    expect((await call('/v1/identity-providers/shared-name', { method: 'DELETE', token: a.token })).status).toBe(204);
    expect((await call('/v1/identity-providers/shared-name', { token: b.token })).status).toBe(200);
    expect((await call('/v1/identity-providers/bravo-only', { token: b.token })).status).toBe(200);
    // SSO routes of B do not know A's providers: the same answer as an unknown one.
    const cert = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8');
    const saml = { type: 'saml', saml: { idpEntityId: 'https://idp.alpha.example', ssoUrl: 'https://idp.alpha.example/sso', idpCertificates: [cert] } };
    expect((await call('/v1/identity-providers/alpha-saml', { method: 'PUT', body: saml, token: a.token })).status).toBe(200);
    const oidc = { type: 'oidc', oidc: { issuer: 'https://127.0.0.1:9/alpha', clientId: 'alpha-client' }, secret: 'alpha-client-secret' };
    expect((await call('/v1/identity-providers/alpha-oidc', { method: 'PUT', body: oidc, token: a.token })).status).toBe(200);
    expect((await call(`/v1/tenants/${A}/sso/saml/alpha-saml/metadata`)).status).toBe(200);
    for (const route of ['saml/alpha-saml/metadata', 'saml/alpha-saml/login', 'oidc/alpha-oidc/login']) {
      const probed = await call(`/v1/tenants/${B}/sso/${route}`, { token: a.token });
      const unknownRoute = await call(`/v1/tenants/${B}/sso/${route.replace(/alpha-(saml|oidc)/, 'nobody-here')}`);
      expectProbe(probed, 404, aData);
      expect(probed.body).not.toContain('idp.alpha.example');
      expect(probed.json.error.message.replace(/alpha-(saml|oidc)/, 'X')).toBe(unknownRoute.json.error.message.replace('nobody-here', 'X'));
    }
    const acs = await call(`/v1/tenants/${B}/sso/saml/alpha-saml/acs`, { raw: 'SAMLResponse=PHNhbWw%2BPC9zYW1sPg%3D%3D', headers: { 'content-type': 'application/x-www-form-urlencoded' }, method: 'POST' });
    expectProbe(acs, 404, aData);
    // The LDAP sign-in route of B does not know A's provider: the same answer as an unknown one.
    const viaA = await call(`/v1/tenants/${B}/sign-in/ldap/alpha-only`, { body: { username: 'member', password: MEMBER_PASSWORD } });
    const unknown = await call(`/v1/tenants/${B}/sign-in/ldap/nobody-here`, { body: { username: 'member', password: MEMBER_PASSWORD } });
    expectProbe(viaA, 404, aData);
    expect(viaA.json.error.message.replace('alpha-only', 'X')).toBe(unknown.json.error.message.replace('nobody-here', 'X'));
  });

  it('tenant settings: an administrator changes their own tenant only', async () => {
    const before = await call('/v1/tenant', { token: b.token });
    expectProbe(before, 200, aData);
    const mineA = await call('/v1/tenant', { token: a.token });
    expectProbe(mineA, 200, bData);
    expect(mineA.json.id).toBe(A);
    const policy = { minLength: 20, minClasses: 4, historySize: 3, maxAgeDays: 0 };
    // With B's version as If-Match, A still addresses only its own tenant.
    const put = await call('/v1/tenant/password-policy', { method: 'PUT', body: policy, token: a.token, headers: { 'if-match': before.headers.etag as string } });
    expect([200, 409]).toContain(put.status);
    expectProbe(put, put.status, bData);
    expect((await call('/v1/tenant/password-policy', { method: 'PUT', body: policy, token: a.token })).status).toBe(200);
    expect((await call('/v1/tenant/mfa', { method: 'PUT', body: { required: true }, token: a.token })).status).toBe(200);
    const after = await call('/v1/tenant', { token: b.token });
    expect(after.json).toEqual(before.json);
    expect((await call('/v1/tenant', { token: a.token })).json).toMatchObject({ id: A, passwordPolicy: policy, mfaRequired: true });
    expect(await eventsOf('auth.tenant.password-policy-changed', B)).toEqual([]);
    expect((await call('/v1/tenant/mfa', { method: 'PUT', body: { required: false }, token: a.token })).status).toBe(200);
  });

  it('sign-in at B with A’s credentials is a 401 like an unknown account; A’s token on B’s routes gets nothing of B', async () => {
    const withA = await signIn(B, 'root@alpha.example', A_PASSWORD);
    const unknown = await signIn(B, 'nobody@bravo.example', A_PASSWORD);
    const wrongB = await signIn(B, 'boss@bravo.example', A_PASSWORD);
    for (const r of [withA, unknown, wrongB]) expectProbe(r, 401, [...aData, ...bData]);
    const answer = (r: Reply) => ({ code: r.json.error.code, message: r.json.error.message });
    expect(answer(withA)).toEqual(answer(unknown));
    expect(answer(withA)).toEqual(answer(wrongB));
    // A bearer token of A changes nothing on a route naming B: it is not a credential there.
    const withToken = await call(`/v1/tenants/${B}/sign-in`, { body: { username: 'root@alpha.example', password: A_PASSWORD }, token: a.token });
    expectProbe(withToken, 401, bData);
    // There is no authenticated route that takes a tenant from the path: reading B by path is not a route.
    expectProbe(await call(`/v1/tenants/${B}`, { token: a.token }), 404, bData);
    expectProbe(await call(`/v1/tenants/${B}/users`, { token: a.token }), 404, bData);
    // B's own credentials at A's path are refused the same way.
    expectProbe(await signIn(A, 'boss@bravo.example', B_PASSWORD), 401, bData);
  });

  it('lockout: failures for a username in B do not lock the same username in A', async () => {
    for (const token of [a.token, b.token]) {
      expect((await call('/v1/users', { body: { username: 'locky', password: MEMBER_PASSWORD }, token })).status).toBe(201);
    }
    for (let i = 0; i < 5; i++) expect((await signIn(B, 'locky', 'Wrong-Password-000')).status).toBe(401);
    expect((await signIn(B, 'locky', MEMBER_PASSWORD)).status).toBe(429);
    const inA = await signIn(A, 'locky', MEMBER_PASSWORD);
    expectProbe(inA, 200, bData);
    expect(decodeJwt(inA.json.accessToken).tid).toBe(A);
  });

  it('MFA: a challenge of A is not finished with B’s second factor, nor B’s with an access token; B’s member still signs in', async () => {
    // A's member enrols too, with a secret of its own.
    const as = await signIn(A, 'member', MEMBER_PASSWORD);
    const begun = await call('/v1/me/mfa/totp', { method: 'POST', token: as.json.accessToken });
    const aSecret = begun.json.secret as string;
    expect((await call('/v1/me/mfa/totp/confirm', { body: { code: totpCode(aSecret, new Date()) }, token: as.json.accessToken })).status).toBe(200);
    const aChallenge = await signIn(A, 'member', MEMBER_PASSWORD);
    expect(aChallenge.json.status).toBe('mfa_required');
    const next = new Date(Date.now() + 30_000);
    expectProbe(await call('/v1/mfa/verify', { body: { mfaToken: aChallenge.json.mfaToken, code: totpCode(b.totpSecret, next) } }), 401, bData);
    // An access token is not a challenge (refused by its shape).
    expectProbe(await call('/v1/mfa/verify', { body: { mfaToken: a.token, code: totpCode(b.totpSecret, next) } }), 400, bData);
    const bChallenge = await signIn(B, 'member', MEMBER_PASSWORD);
    expect(bChallenge.json.status).toBe('mfa_required');
    const done = await call('/v1/mfa/verify', { body: { mfaToken: bChallenge.json.mfaToken, code: totpCode(b.totpSecret, next) } });
    expectProbe(done, 200, aData);
    expect(decodeJwt(done.json.accessToken)).toMatchObject({ tid: B, sub: b.memberId });
  });
});

describe('roles', () => {
  const r = { a: '', b: '' };

  it('a tenant administrator sets its own users’ tenant roles only; platform roles are not theirs to give', async () => {
    for (const [token, key] of [
      [a.token, 'a'],
      [b.token, 'b'],
    ] as const) {
      const made = await call('/v1/users', { body: { username: 'roley', password: MEMBER_PASSWORD }, token });
      expect(made.status).toBe(201);
      r[key] = made.json.userId;
    }
    expect((await call(`/v1/users/${r.b}/roles`, { method: 'PUT', body: { roles: ['auditor'] }, token: b.token })).status).toBe(204);
    const auditor = await signIn(B, 'roley', MEMBER_PASSWORD);
    expect(decodeJwt(auditor.json.accessToken)).toMatchObject({ tid: B, scp: ['audit:read'] });
    // Another tenant's user is not found; platform roles are not tenant roles (400 naming the field).
    expectProbe(await call(`/v1/users/${r.a}/roles`, { method: 'PUT', body: { roles: ['admin'] }, token: b.token }), 404, aData);
    const platform = await call(`/v1/users/${r.b}/roles`, { method: 'PUT', body: { roles: ['platform-auditor'] }, token: b.token });
    expect(platform.status).toBe(400);
    expect(platform.json.error.message).toMatch(/^roles\.0/);
    expect((await call(`/v1/users/${r.b}/platform-auditor`, { method: 'PUT', body: { granted: true }, token: b.token })).status).toBe(403);
    // Taking the role away ends the user's sessions at once: the refresh token is dead.
    expect((await call(`/v1/users/${r.b}/roles`, { method: 'PUT', body: { roles: ['member'] }, token: b.token })).status).toBe(204);
    expect((await call('/v1/token/refresh', { body: { refreshToken: auditor.json.refreshToken } })).status).toBe(401);
  });

  it('the platform operator makes a user of its own tenant a platform auditor (audit:read:all), no one of another tenant, and never through an API key', async () => {
    expectProbe(await call(`/v1/users/${r.b}/platform-auditor`, { method: 'PUT', body: { granted: true }, token: a.token }), 404, bData);
    expect((await call(`/v1/users/${r.a}/platform-auditor`, { method: 'PUT', body: { granted: 'yes' }, token: a.token })).status).toBe(400);
    expect((await call(`/v1/users/${r.a}/platform-auditor`, { method: 'PUT', body: { granted: true }, token: a.token })).status).toBe(204);
    const signedIn = await signIn(A, 'roley', MEMBER_PASSWORD);
    expect(decodeJwt(signedIn.json.accessToken)).toMatchObject({ tid: A, scp: ['agents:manage', 'audit:read:all'] });
    // A's administrator cannot take the platform role away by setting tenant roles.
    expect((await call(`/v1/users/${r.a}/roles`, { method: 'PUT', body: { roles: ['member'] }, token: a.token })).status).toBe(204);
    expect(decodeJwt((await signIn(A, 'roley', MEMBER_PASSWORD)).json.accessToken)).toMatchObject({ scp: ['agents:manage', 'audit:read:all'] });
    // A key of the platform auditor never carries the platform scope.
    const key = await call('/v1/api-keys', { body: { name: 'reader', scopes: ['audit:read:all'] }, token: signedIn.json.accessToken });
    expect(key.status).toBe(403);
    // Withdrawn: the scope is gone and the sessions with it.
    expect((await call(`/v1/users/${r.a}/platform-auditor`, { method: 'PUT', body: { granted: false }, token: a.token })).status).toBe(204);
    expect((await call('/v1/token/refresh', { body: { refreshToken: signedIn.json.refreshToken } })).status).toBe(401);
    expect(decodeJwt((await signIn(A, 'roley', MEMBER_PASSWORD)).json.accessToken)).toMatchObject({ scp: ['agents:manage'] });
  });
});
