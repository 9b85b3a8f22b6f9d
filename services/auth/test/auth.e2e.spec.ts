import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { AccessTokenVerifier } from '@palisade/auth-verifier';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, infra, startSealPersonalStandIn } from '@palisade/testing';
import { httpsCaller, watchAsPolicy } from './e2e-support';

// The built auth service on port 13101 (offset 6000) in a schema of its own, over its
// real HTTPS API; this test process plays "another service" (policy): its own NATS
// identity, revocation feed and verifier, as the platform wires them.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 13101;
const schema = `auth_e2e_${randomBytes(4).toString('hex')}`;
const tenant = `acme-${randomBytes(3).toString('hex')}`;
const other = `globex-${randomBytes(3).toString('hex')}`;
const ADMIN_PASSWORD = 'Admin-Password-1234';

const call = httpsCaller(PORT);

const signIn = (t: string, username: string, password: string) => call(`/v1/tenants/${t}/sign-in`, { body: { username, password } });

let handles: Array<{ stop(): Promise<unknown> }> = [];
/** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
let peer: Awaited<ReturnType<typeof watchAsPolicy>> | undefined;
let policyVerifier: AccessTokenVerifier;
let admin: { accessToken: string; refreshToken: string };
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_auth', user: 'palisade_auth_owner' });

beforeAll(async () => {
  const c = owner();
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const dir = mkdtempSync(join(tmpdir(), 'auth-e2e-'));
  writeFileSync(join(dir, 'bootstrap.token'), randomBytes(32).toString('base64url'), { mode: 0o600 });
  sealing = await startSealPersonalStandIn();
  handles = runner.startServices({
    services: ['auth'],
    portOffset: 6000,
    logDir: join(infra('PALISADE_HOME'), 'logs', 'auth-e2e'),
    env: {
      LOG_LEVEL: 'warn',
      PG_SCHEMA: schema,
      AUTH_JWKS_URL: `https://127.0.0.1:${PORT}/.well-known/jwks.json`,
      AUTH_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.token'),
      AUTH_OPERATOR_TENANT: tenant,
      AUTH_LOCKOUT_THRESHOLD: '3',
      AUTH_LOCKOUT_BASE_SEC: '2',
      // audit's seal-personal for every append (the stand-in's, A256GCM), as this suite asserts and stops it to see
      // writes refused: with the default (local sealing to a transport key) an audit service of another suite on the
      // shared NATS could hand auth a key, and auth would keep sealing without any audit (the agent's day covers that)
      PERSONAL_SEALING: 'rpc',
    },
  });
  await runner.waitReady(handles, { timeoutMs: 90000 });
  (globalThis as Record<string, unknown>).bootstrapToken = readFileSync(join(dir, 'bootstrap.token'), 'utf8');

  peer = await watchAsPolicy(PORT, 'auth-e2e-policy');
  policyVerifier = peer.verifier;
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

const bootstrapToken = () => (globalThis as Record<string, unknown>).bootstrapToken as string;

describe('auth service', () => {
  it('publishes its signing keys as a JWKS without private parts', async () => {
    const jwks = await call('/.well-known/jwks.json');
    expect(jwks.status).toBe(200);
    expect(jwks.json.keys.length).toBeGreaterThanOrEqual(2); // active + next (published ahead)
    for (const k of jwks.json.keys) {
      expect(k).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig', kid: expect.any(String) });
      expect(k.d).toBeUndefined();
    }
  });

  it('bootstraps the first tenant once, with the bootstrap token only', async () => {
    const body = { tenantId: tenant, tenantName: 'Acme', admin: { username: 'root@acme.example', email: 'root@acme.example', password: ADMIN_PASSWORD } };
    expect((await call('/v1/bootstrap', { body, headers: { authorization: `Bootstrap ${'x'.repeat(43)}` } })).status).toBe(401);
    const created = await call('/v1/bootstrap', { body, headers: { authorization: `Bootstrap ${bootstrapToken()}` } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ tenantId: tenant, adminUserId: expect.any(String) });
    const again = await call('/v1/bootstrap', { body: { ...body, tenantId: other }, headers: { authorization: `Bootstrap ${bootstrapToken()}` } });
    expect(again.status).toBe(409);
  });

  it('signs in with a password and issues tokens of the contract', async () => {
    const res = await signIn(tenant, 'ROOT@acme.example', ADMIN_PASSWORD);
    expect(res.status).toBe(200);
    admin = res.json;
    expect(res.json.refreshToken).toMatch(/^prt_[A-Za-z0-9_-]{43}$/);
    const header = decodeProtectedHeader(res.json.accessToken);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt', kid: expect.any(String) });
    const claims = decodeJwt(res.json.accessToken);
    expect(claims).toMatchObject({ iss: 'palisade-auth', tid: tenant, ptp: 'user', scp: expect.arrayContaining(['auth:admin', 'auth:keys']) });
    expect((claims.exp as number) - (claims.iat as number)).toBe(300);
    await expect(policyVerifier.verify(res.json.accessToken)).resolves.toMatchObject({ principal: { tenantId: tenant, type: 'user' } });
  });

  it('registers users under the password policy, and refuses another tenant’s ids', async () => {
    const weak = await call('/v1/users', { token: admin.accessToken, body: { username: 'bob', password: 'short' } });
    expect(weak.status).toBe(400);
    expect(weak.json.error.message).toContain('password');
    const bad = await call('/v1/users', { token: admin.accessToken, body: { username: 'bob', password: 'Bob-Password-1234', roles: ['god'] } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('roles');
    const bob = await call('/v1/users', { token: admin.accessToken, body: { username: 'bob', email: 'bob@acme.example', password: 'Bob-Password-1234' } });
    expect(bob.status).toBe(201);
    const dup = await call('/v1/users', { token: admin.accessToken, body: { username: 'BOB', password: 'Bob-Password-1234' } });
    expect(dup.status).toBe(409);
    const asBob = await signIn(tenant, 'bob', 'Bob-Password-1234');
    expect(asBob.status).toBe(200);
    expect(decodeJwt(asBob.json.accessToken).scp).toEqual(['agents:manage']); // a member manages their own agents, nothing else
    expect((await call('/v1/users', { token: asBob.json.accessToken })).status).toBe(403);
    // A user id that is not in the caller's tenant is not found.
    const stranger = await call('/v1/users/0190d6a0-0000-7000-8000-000000000000/revoke-sessions', { method: 'POST', token: admin.accessToken });
    expect(stranger.status).toBe(404);
  });

  it('refuses a registration with 503 while personal data cannot be sealed, and stores nothing of it (issue 10)', async () => {
    await sealing?.stop();
    sealing = undefined;
    try {
      const carol = await call('/v1/users', { token: admin.accessToken, body: { username: 'carol-unsealed', email: 'carol@acme.example', password: 'Carol-Password-1234' } });
      expect(carol.status).toBe(503);
      expect(carol.json.error.message).toBe('personal data cannot be sealed: the audit service is unavailable');
    } finally {
      sealing = await startSealPersonalStandIn();
    }
    const c = owner();
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT (SELECT count(*) FROM ${schema}.events WHERE envelope::text LIKE '%carol%')::int AS events, (SELECT count(*) FROM ${schema}.users WHERE username LIKE 'carol%')::int AS users`);
      expect(rows[0]).toEqual({ events: 0, users: 0 });
    } finally {
      await c.end();
    }
    // sealed again: the same registration goes through
    const carol = await call('/v1/users', { token: admin.accessToken, body: { username: 'carol-unsealed', email: 'carol@acme.example', password: 'Carol-Password-1234' } });
    expect(carol.status).toBe(201);
  });

  it('answers a wrong password and an unknown account alike, in similar time', async () => {
    const timed = async (username: string) => {
      const t = process.hrtime.bigint();
      const r = await signIn(tenant, username, 'Wrong-Password-999');
      return { r, ms: Number(process.hrtime.bigint() - t) / 1e6 };
    };
    const known = [];
    const unknown = [];
    for (let i = 0; i < 2; i++) {
      known.push(await timed('carol-known'));
      unknown.push(await timed(`nobody-${i}`));
    }
    await call('/v1/users', { token: admin.accessToken, body: { username: 'dave', password: 'Dave-Password-1234' } });
    const wrong = await signIn(tenant, 'dave', 'Wrong-Password-999');
    const none = await signIn(tenant, 'nobody-x', 'Wrong-Password-999');
    expect(wrong.status).toBe(401);
    expect(none.status).toBe(401);
    expect(wrong.json.error.message).toBe(none.json.error.message);
    // Both run one argon2id verification: neither is an order of magnitude faster.
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const ratio = median(known.map((k) => k.ms)) / median(unknown.map((u) => u.ms));
    expect(ratio).toBeGreaterThan(0.25);
    expect(ratio).toBeLessThan(4);
  });

  it('locks an account out after repeated failures, with backoff, and records it without the password', async () => {
    await call('/v1/users', { token: admin.accessToken, body: { username: 'erin', email: 'erin@acme.example', password: 'Erin-Password-1234' } });
    for (let i = 0; i < 3; i++) expect((await signIn(tenant, 'erin', 'Wrong-Password-999')).status).toBe(401);
    const locked = await signIn(tenant, 'erin', 'Erin-Password-1234');
    expect(locked.status).toBe(429);
    expect(locked.json.error.message).toMatch(/retry in \d+ s/);
    const c = owner();
    await c.connect();
    try {
      const { rows } = await c.query(`SELECT envelope FROM ${schema}.events WHERE event_type IN ('auth.user.locked-out', 'auth.user.sign-in-failed') AND tenant_id = $1`, [tenant]);
      const text = JSON.stringify(rows);
      expect(text).not.toContain('Wrong-Password-999');
      expect(text).not.toContain('Erin-Password');
      const lock = rows.map((r) => r.envelope).find((e) => e.type === 'auth.user.locked-out');
      expect(lock.data).toMatchObject({ scope: 'account', failures: 3 });
      expect(JSON.stringify(lock.data)).not.toContain('127.0.0.1');
      // the source address is personal data: stored only sealed by audit (issue 10)
      expect(lock.personal).toMatchObject({ subjectId: expect.any(String), alg: 'A256GCM', sealed: expect.any(String) });
      expect(lock.personal).not.toHaveProperty('data');
      expect(text).not.toContain('127.0.0.1');
      const throttled = rows.map((r) => r.envelope).filter((e) => e.data.reason === 'throttled');
      expect(throttled.length).toBe(1);
    } finally {
      await c.end();
    }
    await new Promise((r) => setTimeout(r, 2100));
    expect((await signIn(tenant, 'erin', 'Erin-Password-1234')).status).toBe(200);
  });

  it('rotates refresh tokens, and reuse of an old one revokes the session everywhere within a second', async () => {
    const s = (await signIn(tenant, 'bob', 'Bob-Password-1234')).json;
    const r1 = await call('/v1/token/refresh', { body: { refreshToken: s.refreshToken } });
    expect(r1.status).toBe(200);
    expect(r1.json.refreshToken).not.toBe(s.refreshToken);
    expect(r1.json.sessionId).toBe(s.sessionId);
    await expect(policyVerifier.verify(r1.json.accessToken)).resolves.toBeDefined();
    const reuse = await call('/v1/token/refresh', { body: { refreshToken: s.refreshToken } });
    const revokedAt = Date.now();
    expect(reuse.status).toBe(401);
    expect(reuse.json.error.message).toContain('session is revoked');
    await eventually(() => policyVerifier.verify(r1.json.accessToken).then(() => false, () => true), 1000, 10);
    console.log(`refresh-token reuse → refused by another service in ${Date.now() - revokedAt} ms`);
    expect((await call('/v1/token/refresh', { body: { refreshToken: r1.json.refreshToken } })).status).toBe(401);
    expect((await call('/v1/token/refresh', { body: { refreshToken: 'prt_' + 'A'.repeat(43) } })).status).toBe(401);
  });

  it('revokes a user: another service refuses their live token within 1 s (measured)', async () => {
    const s = (await signIn(tenant, 'dave', 'Dave-Password-1234')).json;
    await policyVerifier.verify(s.accessToken);
    const userId = decodeJwt(s.accessToken).sub!;
    const started = Date.now();
    const revoked = await call(`/v1/users/${userId}/revoke-sessions`, { method: 'POST', token: admin.accessToken });
    expect(revoked.status).toBe(204);
    await eventually(() => policyVerifier.verify(s.accessToken).then(() => false, (e: Error) => e.message.includes('principal revoked')), 1000, 5);
    const latency = Date.now() - started;
    console.log(`revocation latency (revoke request → another service refuses): ${latency} ms`);
    expect(latency).toBeLessThan(1000);
    // The auth service's own guard refuses it too, and the refresh token is dead.
    await eventually(async () => (await call('/v1/me/password', { token: s.accessToken, body: { currentPassword: 'x', newPassword: 'y' } })).status === 401, 1000, 20);
    expect((await call('/v1/token/refresh', { body: { refreshToken: s.refreshToken } })).status).toBe(401);
  });

  it('signs out: the session’s token is refused', async () => {
    const s = (await signIn(tenant, 'bob', 'Bob-Password-1234')).json;
    expect((await call('/v1/sign-out', { method: 'POST', token: s.accessToken })).status).toBe(204);
    await eventually(() => policyVerifier.verify(s.accessToken).then(() => false, (e: Error) => e.message.includes('session revoked')), 1000, 10);
  });

  it('changes a password under the policy and refuses a recent one', async () => {
    const s = (await signIn(tenant, 'bob', 'Bob-Password-1234')).json;
    const same = await call('/v1/me/password', { token: s.accessToken, body: { currentPassword: 'Bob-Password-1234', newPassword: 'Bob-Password-1234' } });
    expect(same.status).toBe(400);
    expect(same.json.error.message).toContain('last 5 passwords');
    const wrong = await call('/v1/me/password', { token: s.accessToken, body: { currentPassword: 'nope', newPassword: 'Bob-Password-5678' } });
    expect(wrong.status).toBe(401);
    const ok = await call('/v1/me/password', { token: s.accessToken, body: { currentPassword: 'Bob-Password-1234', newPassword: 'Bob-Password-5678' } });
    expect(ok.status).toBe(204);
    expect((await signIn(tenant, 'bob', 'Bob-Password-1234')).status).toBe(401);
    expect((await signIn(tenant, 'bob', 'Bob-Password-5678')).status).toBe(200);
  });

  it('sets tenant settings with If-Match versions', async () => {
    const t = await call('/v1/tenant', { token: admin.accessToken });
    expect(t.status).toBe(200);
    const etag = t.headers.etag as string;
    const policy = { minLength: 14, minClasses: 3, historySize: 3, maxAgeDays: 90 };
    expect((await call('/v1/tenant/password-policy', { method: 'PUT', token: admin.accessToken, body: policy, headers: { 'if-match': '"999"' } })).status).toBe(409);
    const ok = await call('/v1/tenant/password-policy', { method: 'PUT', token: admin.accessToken, body: policy, headers: { 'if-match': etag } });
    expect(ok.status).toBe(200);
    expect((await call('/v1/tenant/password-policy', { method: 'PUT', token: admin.accessToken, body: { ...policy, minLength: 3 } })).status).toBe(400);
  });

  it('rotates signing keys without downtime and revokes a key everywhere', async () => {
    const before = (await signIn(tenant, 'bob', 'Bob-Password-5678')).json.accessToken;
    const oldKid = decodeProtectedHeader(before).kid!;
    const rotated = await call('/v1/signing-keys/rotate', { method: 'POST', token: admin.accessToken });
    expect(rotated.status).toBe(200);
    expect(rotated.json.kid).not.toBe(oldKid);
    const after = (await signIn(tenant, 'bob', 'Bob-Password-5678')).json.accessToken;
    expect(decodeProtectedHeader(after).kid).toBe(rotated.json.kid);
    await expect(policyVerifier.verify(before)).resolves.toBeDefined(); // retired key still published
    await expect(policyVerifier.verify(after)).resolves.toBeDefined();
    const jwks = (await call('/.well-known/jwks.json')).json.keys.map((k: { kid: string }) => k.kid);
    expect(jwks).toEqual(expect.arrayContaining([oldKid, rotated.json.kid]));
    const adminToken = (await signIn(tenant, 'root@acme.example', ADMIN_PASSWORD)).json.accessToken;
    expect((await call(`/v1/signing-keys/${oldKid}/revoke`, { method: 'POST', token: adminToken })).status).toBe(204);
    await eventually(() => policyVerifier.verify(before).then(() => false, () => true), 1000, 10);
    await expect(policyVerifier.verify(after)).resolves.toBeDefined();
    admin.accessToken = adminToken;
  });

  it('issues service tokens bound to the caller’s mTLS certificate (RFC 8705)', async () => {
    // credential may ask the policy service for decisions (SERVICE_GRANTS).
    const credential = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });
    const { cert, key } = credential.tlsOptions();
    credential.stop();
    expect((await call('/v1/service-tokens', { body: { audience: ['palisade:policy'] } })).status).toBe(401);
    const res = await call('/v1/service-tokens', { body: { audience: ['palisade:policy'], scopes: ['policy:decide'] }, cert: cert as string, key: key as string });
    expect(res.status).toBe(200);
    const claims = decodeJwt(res.json.accessToken);
    expect(claims).toMatchObject({ sub: 'credential', ptp: 'service', tid: 'system', scp: ['policy:decide'], cnf: { 'x5t#S256': expect.any(String) } });
    const presented = new X509Certificate(cert as string);
    await expect(policyVerifier.verify(res.json.accessToken, { clientCertificate: presented })).resolves.toBeDefined();
    await expect(policyVerifier.verify(res.json.accessToken)).rejects.toMatchObject({ message: expect.stringContaining('not presented') });
  });

  it('gives a service token only what the service’s grant allows: llm-router gets no platform or all-tenant audit scope', async () => {
    const router = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'llm-router' });
    const { cert, key } = router.tlsOptions();
    router.stop();
    const ask = (audience: string[], scopes: string[]) => call('/v1/service-tokens', { body: { audience, scopes }, cert: cert as string, key: key as string });
    for (const [audience, scope] of [
      ['palisade:audit', 'audit:read:all'],
      ['palisade:auth', 'platform:admin'],
      ['palisade:audit', 'audit:erase'],
      ['palisade:auth', 'auth:keys'],
    ]) {
      const refused = await ask([audience], [scope]);
      expect(refused.status).toBe(403);
      expect(refused.json.error.message).toContain(`scope ${scope}`);
      expect(refused.json.accessToken).toBeUndefined();
    }
    const audit = await ask(['palisade:audit'], []);
    expect(audit.status).toBe(403);
    expect(audit.json.error.message).toContain('audience palisade:audit');
    const granted = await ask(['palisade:policy'], ['policy:decide']);
    expect(granted.status).toBe(200);
    expect(decodeJwt(granted.json.accessToken)).toMatchObject({ sub: 'llm-router', aud: 'palisade:policy', scp: ['policy:decide'] });
  });

  it('answers malformed input with clear 4xx and keeps serving', async () => {
    const now = Math.floor(Date.now() / 1000);
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64({ iss: 'palisade-auth', aud: 'palisade:auth', sub: 'x', tid: tenant, ptp: 'user', jti: 'j', iat: now, exp: now + 60, scp: ['auth:admin'] })}.`;
    expect((await call('/v1/users', { token: none })).status).toBe(401);
    const jwks = (await call('/.well-known/jwks.json')).json.keys[0];
    const confusion = `${b64({ alg: 'HS256', typ: 'at+jwt', kid: jwks.kid })}.${b64({ iss: 'palisade-auth', aud: 'palisade:auth', sub: 'x', tid: tenant, ptp: 'user', jti: 'j', iat: now, exp: now + 60 })}.AAAA`;
    const r = await call('/v1/users', { token: confusion });
    expect(r.status).toBe(401);
    expect(r.json.error.message).toContain('algorithm not allowed');
    expect((await call(`/v1/tenants/${tenant}/sign-in`, { raw: '{"username":' })).status).toBe(400);
    expect((await call(`/v1/tenants/${tenant}/sign-in`, { raw: JSON.stringify({ username: 'a', password: 'x'.repeat(2 * 1024 * 1024) }) })).status).toBe(413);
    const long = await call(`/v1/tenants/${tenant}/sign-in`, { body: { username: 'a', password: 'x'.repeat(2000) } });
    expect(long.status).toBe(400);
    expect(long.json.error.message).toContain('password');
    expect((await call(`/v1/tenants/bad%20tenant!/sign-in`, { body: { username: 'a', password: 'b' } })).status).toBe(400);
    expect((await call(`/v1/tenants/${tenant}/sign-in`, { body: { username: 'a', password: 'b', extra: 1 } })).status).toBe(400);
    expect((await call('/health/ready')).status).toBe(200);
  });
});

// The shared edge validator (libs/service-kit EdgeTextGuard): NUL bytes, lone
// UTF-16 surrogates (as the JSON escape "\ud800") and bidirectional controls are a 400
// naming the field, before any handler, database or log line sees them.
describe('auth service: unsafe text at the edge', () => {
  let token: string;
  beforeAll(async () => {
    token = (await signIn(tenant, 'root@acme.example', ADMIN_PASSWORD)).json.accessToken;
  });

  it('refuses an API key name holding a NUL, a lone surrogate or a bidi override (400 naming the field), and still creates a plain one', async () => {
    for (const raw of ['{"name":"ci\\u0000key","scopes":["auth:admin"]}', '{"name":"ci\\ud800key","scopes":["auth:admin"]}', '{"name":"ci\\udc00","scopes":["auth:admin"]}', '{"name":"ci\\u202Ekey","scopes":["auth:admin"]}']) {
      const res = await call('/v1/api-keys', { raw, token });
      expect({ raw, status: res.status }).toEqual({ raw, status: 400 });
      expect(res.json.error).toMatchObject({ code: 'validation', message: expect.stringMatching(/^name: /), details: { field: 'name', location: 'body' } });
    }
    expect((await call('/v1/api-keys', { body: { name: 'ci-key', scopes: ['auth:admin'] }, token })).status).toBe(201);
  });

  it('refuses an unauthenticated sign-in whose username holds a lone surrogate (400), and keeps counting real failures', async () => {
    const surrogate = await call(`/v1/tenants/${tenant}/sign-in`, { raw: '{"username":"root@acme.example\\ud800","password":"wrong-password"}' });
    expect(surrogate.status).toBe(400);
    expect(surrogate.json.error.details).toEqual({ field: 'username', location: 'body' });
    const nul = await call(`/v1/tenants/${tenant}/sign-in`, { body: { username: 'nobody\u0000', password: 'wrong-password' } });
    expect(nul.status).toBe(400);
    expect((await call(`/v1/tenants/${tenant}/sign-in?x=%00`, { body: { username: 'nobody', password: 'wrong-password' } })).json.error.details).toEqual({ field: 'x', location: 'query' });
    // The service keeps serving: an ordinary wrong password is still a 401.
    expect((await signIn(tenant, 'nobody-at-all', 'wrong-password')).status).toBe(401);
  });
});
