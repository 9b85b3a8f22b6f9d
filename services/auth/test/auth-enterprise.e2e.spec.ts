import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { decodeJwt } from 'jose';
import { AccessTokenVerifier } from '@palisade/auth-verifier';
import { PalisadeError } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';
import { eventually, infra, startSealPersonalStandIn } from '@palisade/testing';
import { totpCode } from '../src/mfa/totp';
import { httpsCaller, testDirectory, watchAsPolicy } from './e2e-support';
import { startTestOp, type TestOp } from './oidc-op';
import { assertionXml, authnRequestId, idpKey, responseXml, sign, type IdpKey } from './saml-idp';

// The built auth service on port 13601 (offset 6500) in a schema of its own. The demo
// seeding of `npm start` (scripts/seed-demo.js) creates its first tenant; then TOTP,
// mandatory 2FA and API keys over the real HTTPS API and NATS, this process playing
// "policy" (its own NATS identity, revocation feed and verifier).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { seedDemo } = require('../../../scripts/seed-demo.js');
const PORT = 13601;
const call = httpsCaller(PORT);
const schema = `auth_ent_${randomBytes(4).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'auth-ent-'));
const tokenFile = join(dir, 'auth', 'bootstrap.token');
const markerFile = join(dir, 'auth', 'demo-tenant.json');
const T = 'demo';
const MEMBER_PASSWORD = 'Member-Password-1234';

let handles: Array<{ stop(): Promise<unknown> }> = [];
/** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
let nc: NatsConnection;
let peer: Awaited<ReturnType<typeof watchAsPolicy>> | undefined;
let verifier: AccessTokenVerifier;
let adminToken = '';
let adminPassword = '';
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_auth', user: 'palisade_auth_owner' });
const signIn = (username: string, password: string) => call(`/v1/tenants/${T}/sign-in`, { body: { username, password } });
const at = (offsetSec: number) => new Date(Date.now() + offsetSec * 1000);

async function eventsOf(type: string): Promise<Array<{ data: Record<string, unknown>; personal?: unknown }>> {
  const c = owner();
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT envelope FROM ${schema}.events WHERE event_type = $1 AND tenant_id = $2 ORDER BY global_position`, [type, T]);
    return rows.map((r) => r.envelope);
  } finally {
    await c.end();
  }
}

/**
 * Every auth instance on the shared development NATS answers palisade.rpc.auth.* in the
 * queue group `auth`, including those of other test runs (other schemas, which do not know
 * this key). Asked 20 times, ours answers with near certainty (1 − 2^-20 with one other).
 */
async function verifyByRpc(apiKey: string): Promise<Array<{ principal: unknown } | { code: string }>> {
  const answers: Array<{ principal: unknown } | { code: string }> = [];
  for (let i = 0; i < 20; i++) {
    answers.push(
      await rpcRequest(nc, 'palisade.rpc.auth.verify-api-key', { apiKey }).then(
        (principal) => ({ principal }),
        (e: PalisadeError) => ({ code: e.code }),
      ),
    );
  }
  return answers;
}

async function register(username: string): Promise<string> {
  const res = await call('/v1/users', { body: { username, password: MEMBER_PASSWORD }, token: adminToken });
  expect(res.status).toBe(201);
  return res.json.userId;
}

beforeAll(async () => {
  const c = owner();
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  sealing = await startSealPersonalStandIn();
  handles = runner.startServices({
    services: ['auth'],
    portOffset: 6500,
    logDir: join(infra('PALISADE_HOME'), 'logs', 'auth-enterprise'),
    env: {
      LOG_LEVEL: 'warn',
      PG_SCHEMA: schema,
      AUTH_JWKS_URL: `https://127.0.0.1:${PORT}/.well-known/jwks.json`,
      AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile,
      AUTH_LOCKOUT_THRESHOLD: '3',
      AUTH_LOCKOUT_BASE_SEC: '2',
      AUTH_ADDRESS_LOCKOUT_THRESHOLD: '10000',
    },
  });
  await runner.waitReady(handles, { timeoutMs: 90000 });
  peer = await watchAsPolicy(PORT, 'auth-enterprise-policy');
  ({ nc } = peer);
  verifier = peer.verifier;
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

describe('demo tenant of npm start (scripts/seed-demo.js)', () => {
  it('creates the demo tenant and admin through the bootstrap API once, prints the password once, and finds it the second time', async () => {
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const printed: string[] = [];
    const first = await seedDemo({ authUrl: `https://127.0.0.1:${PORT}`, ca, tokenFile, markerFile, print: (l: string) => printed.push(l) });
    expect(first).toMatchObject({ created: true, tenantId: T, username: 'admin@demo.example' });
    adminPassword = first.password;
    expect(adminPassword.length).toBeGreaterThanOrEqual(24);
    expect(printed.join('\n')).toContain(adminPassword);
    expect(printed.join('\n')).toMatch(/curl --cacert .*\/v1\/tenants\/demo\/sign-in/);
    expect(existsSync(tokenFile)).toBe(false); // one-time token gone
    expect(readFileSync(markerFile, 'utf8')).not.toContain(adminPassword);

    const again: string[] = [];
    const second = await seedDemo({ authUrl: `https://127.0.0.1:${PORT}`, ca, tokenFile, markerFile, print: (l: string) => again.push(l) });
    expect(second).toEqual({ created: false, tenantId: T });
    expect(again.join('\n')).toContain('exists already');
    expect(again.join('\n')).not.toContain(adminPassword);

    const res = await signIn('admin@demo.example', adminPassword);
    expect(res.status).toBe(200);
    adminToken = res.json.accessToken;
  });
});

describe('TOTP second factor', () => {
  let secret = '';
  let recoveryCodes: string[] = [];

  it('enrols a signed-in user: a wrong first code is refused, the right one gives ten recovery codes', async () => {
    await register('bob');
    const token = (await signIn('bob', MEMBER_PASSWORD)).json.accessToken;
    const begun = await call('/v1/me/mfa/totp', { method: 'POST', token });
    expect(begun.status).toBe(200);
    expect(begun.json.otpauthUri).toMatch(/^otpauth:\/\/totp\/.*secret=/);
    const wrong = await call('/v1/me/mfa/totp/confirm', { body: { code: totpCode(begun.json.secret, at(-600)) }, token });
    expect(wrong.status).toBe(401);
    expect((await call('/v1/me/mfa/totp/confirm', { body: { code: 'abcdef' }, token })).status).toBe(400);
    const ok = await call('/v1/me/mfa/totp/confirm', { body: { code: totpCode(begun.json.secret, new Date()) }, token });
    expect(ok.status).toBe(200);
    expect(ok.json.recoveryCodes).toHaveLength(10);
    secret = begun.json.secret;
    recoveryCodes = ok.json.recoveryCodes;
    expect((await call('/v1/me/mfa/totp', { method: 'POST', token })).status).toBe(409);
    expect((await eventsOf('auth.user.mfa-enrolled')).map((e) => e.data)).toEqual([expect.objectContaining({ method: 'totp', recoveryCodes: 10 })]);
    // No secret or code in any event.
    const all = JSON.stringify(await eventsOf('auth.user.mfa-enrolled'));
    expect(all).not.toContain(secret);
    expect(all).not.toContain(recoveryCodes[0]);
  });

  it('asks an enrolled user for the second factor before any token, and refuses a replayed code', async () => {
    const first = await signIn('bob', MEMBER_PASSWORD);
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ status: 'mfa_required', mfaToken: expect.stringMatching(/^pmc_/), expiresIn: 300 });
    // The enrolment used this step's code: the next step's (within the drift window) is fresh.
    const code = totpCode(secret, at(30));
    const ok = await call('/v1/mfa/verify', { body: { mfaToken: first.json.mfaToken, code } });
    expect(ok.status).toBe(200);
    expect(decodeJwt(ok.json.accessToken).sub).toBeDefined();
    // The MFA token is single use, and the same code is not accepted twice.
    expect((await call('/v1/mfa/verify', { body: { mfaToken: first.json.mfaToken, code } })).status).toBe(401);
    const second = await signIn('bob', MEMBER_PASSWORD);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: second.json.mfaToken, code } })).status).toBe(401);
    // The MFA token is no access token.
    expect((await call('/v1/api-keys', { token: second.json.mfaToken })).status).toBe(401);
  });

  it('accepts each recovery code once', async () => {
    const a = await signIn('bob', MEMBER_PASSWORD);
    const used = await call('/v1/mfa/verify', { body: { mfaToken: a.json.mfaToken, recoveryCode: recoveryCodes[0].toUpperCase() } });
    expect(used.status).toBe(200);
    const b = await signIn('bob', MEMBER_PASSWORD);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: b.json.mfaToken, recoveryCode: recoveryCodes[0] } })).status).toBe(401);
    expect((await eventsOf('auth.user.recovery-code-used')).map((e) => e.data.remaining)).toEqual([9]);
  });

  it('answers malformed second-factor requests with 400 and unknown tokens with 401', async () => {
    expect((await call('/v1/mfa/verify', { body: { mfaToken: 'pmc_x', code: '12' } })).status).toBe(400);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: 'pmc_x', code: '123456', recoveryCode: 'aaaa-aaaa-aaaa-aaaa' } })).status).toBe(400);
    expect((await call('/v1/mfa/verify', { raw: '{"mfaToken":' })).status).toBe(400);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: `pmc_${'A'.repeat(43)}`, code: '123456' } })).status).toBe(401);
  });

  it('counts wrong codes in the shared lockout: the third locks the account, password sign-in included', async () => {
    // A complete sign-in clears earlier failures (the replay and reuse above).
    const clean = await signIn('bob', MEMBER_PASSWORD);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: clean.json.mfaToken, recoveryCode: recoveryCodes[1] } })).status).toBe(200);
    const before = (await eventsOf('auth.user.sign-in-failed')).filter((e) => e.data.reason === 'mfa_failed').length;
    const a = await signIn('bob', MEMBER_PASSWORD);
    const wrong = totpCode(secret, at(-900));
    expect((await call('/v1/mfa/verify', { body: { mfaToken: a.json.mfaToken, code: wrong } })).status).toBe(401);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: a.json.mfaToken, code: wrong } })).status).toBe(401);
    expect((await call('/v1/mfa/verify', { body: { mfaToken: a.json.mfaToken, code: wrong } })).status).toBe(429);
    expect((await signIn('bob', MEMBER_PASSWORD)).status).toBe(429);
    const failures = await eventsOf('auth.user.sign-in-failed');
    expect(failures.filter((e) => e.data.reason === 'mfa_failed')).toHaveLength(before + 3);
    expect((await eventsOf('auth.user.locked-out')).length).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 2200)); // lock = 2 s
    const b = await signIn('bob', MEMBER_PASSWORD);
    expect(b.json.status).toBe('mfa_required');
    expect((await call('/v1/mfa/verify', { body: { mfaToken: b.json.mfaToken, recoveryCode: recoveryCodes[2] } })).status).toBe(200);
  });
});

describe('mandatory 2FA for the tenant', () => {
  let daveId = '';

  it('walks a user without a second factor through enrolment before any access token', async () => {
    daveId = await register('dave');
    expect((await call('/v1/tenant/mfa', { method: 'PUT', body: { required: true }, token: adminToken })).status).toBe(200);
    const res = await signIn('dave', MEMBER_PASSWORD);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'mfa_enrolment_required', mfaToken: expect.stringMatching(/^pmc_/), expiresIn: 300 });
    expect(res.json.accessToken).toBeUndefined();
    const enrolmentToken = res.json.mfaToken;
    // Not usable as a verification token nor as an access token.
    expect((await call('/v1/mfa/verify', { body: { mfaToken: enrolmentToken, code: '123456' } })).status).toBe(401);
    expect((await call('/v1/users', { token: enrolmentToken })).status).toBe(401);
    const begun = await call('/v1/mfa/enrolment', { body: { enrolmentToken } });
    expect(begun.status).toBe(200);
    const done = await call('/v1/mfa/enrolment/confirm', { body: { enrolmentToken, code: totpCode(begun.json.secret, new Date()) } });
    expect(done.status).toBe(200);
    expect(done.json.recoveryCodes).toHaveLength(10);
    const claims = decodeJwt(done.json.accessToken);
    expect(claims.sub).toBe(daveId);
    expect((await call('/v1/api-keys', { token: done.json.accessToken })).status).toBe(200);
    expect((await call('/v1/mfa/enrolment/confirm', { body: { enrolmentToken, code: totpCode(begun.json.secret, new Date()) } })).status).toBe(401);
  });

  it('lets an administrator reset a lost second factor: enrolment again at next sign-in', async () => {
    expect((await call(`/v1/users/${daveId}/mfa/reset`, { method: 'POST', token: adminToken })).status).toBe(204);
    expect((await call(`/v1/users/${daveId}/mfa/reset`, { method: 'POST', token: adminToken })).status).toBe(404);
    expect((await call(`/v1/users/00000000-0000-4000-8000-000000000000/mfa/reset`, { method: 'POST', token: adminToken })).status).toBe(404);
    expect((await eventsOf('auth.user.mfa-reset')).map((e) => e.data.userId)).toEqual([daveId]);
    expect((await signIn('dave', MEMBER_PASSWORD)).json.status).toBe('mfa_enrolment_required');
    expect((await call('/v1/tenant/mfa', { method: 'PUT', body: { required: false }, token: adminToken })).status).toBe(200);
  });
});

describe('API keys', () => {
  let adminKey = { keyId: '', apiKey: '' };

  it('creates keys with a recognisable prefix and scopes never beyond the owner’s', async () => {
    const created = await call('/v1/api-keys', { body: { name: 'ci', scopes: ['auth:admin'], expiresInDays: 30 }, token: adminToken });
    expect(created.status).toBe(201);
    expect(created.json.apiKey).toMatch(/^palisade_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$/);
    adminKey = created.json;
    expect((await call('/v1/api-keys', { body: { name: 'x', scopes: ['auth:keys'] }, token: adminToken })).status).toBe(403);
    const eve = await register('eve');
    const eveToken = (await signIn('eve', MEMBER_PASSWORD)).json.accessToken;
    expect((await call('/v1/api-keys', { body: { name: 'x', scopes: ['auth:admin'] }, token: eveToken })).status).toBe(403);
    expect((await call('/v1/api-keys', { body: { name: 'x', serviceAccount: 'bot' }, token: eveToken })).status).toBe(403);
    const own = await call('/v1/api-keys', { body: { name: 'mine' }, token: eveToken });
    expect(own.status).toBe(201);
    // Eve cannot see, rotate or revoke the admin's key: 404.
    expect((await call(`/v1/api-keys/${adminKey.keyId}/revoke`, { method: 'POST', token: eveToken })).status).toBe(404);
    expect((await call('/v1/api-keys', { token: eveToken })).json.map((k: { keyId: string }) => k.keyId)).toEqual([own.json.keyId]);
    // The owner disabled: the key stops working.
    expect((await call(`/v1/users/${eve}/disable`, { method: 'POST', token: adminToken })).status).toBe(204);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: own.json.apiKey } })).status).toBe(401);
    // The key was created with an event, without its secret.
    const events = JSON.stringify(await eventsOf('auth.api-key.created'));
    expect(events).toContain(adminKey.keyId);
    expect(events).not.toContain(adminKey.apiKey.slice(-43));
  });

  it('exchanges a key for a short-lived access token of the owner with the key’s scopes, and records the last use', async () => {
    const res = await call('/v1/tokens/api-key', { body: { apiKey: adminKey.apiKey } });
    expect(res.status).toBe(200);
    const { principal, claims } = await verifier.verify(res.json.accessToken);
    expect(principal).toMatchObject({ type: 'user', tenantId: T, scopes: ['auth:admin'], sessionId: `apikey-${adminKey.keyId}` });
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(300);
    expect((await call('/v1/users', { token: res.json.accessToken })).status).toBe(200);
    const listed = await call('/v1/api-keys', { token: adminToken });
    const mine = listed.json.find((k: { keyId: string }) => k.keyId === adminKey.keyId);
    expect(mine).toMatchObject({ status: 'active', scopes: ['auth:admin'], lastUsedAt: expect.any(String) });
    expect(listed.body).not.toContain(adminKey.apiKey.slice(-43));
  });

  it('answers palisade.rpc.auth.verify-api-key with the Principal, and coded errors for bad keys', async () => {
    const answers = await verifyByRpc(adminKey.apiKey);
    expect(answers.filter((a) => 'principal' in a)).not.toHaveLength(0);
    for (const a of answers) if ('principal' in a) expect(a.principal).toMatchObject({ type: 'user', tenantId: T, scopes: ['auth:admin'] });
    const wrong = `${adminKey.apiKey.slice(0, -4)}AAAA`;
    expect(new Set((await verifyByRpc(wrong)).map((a) => ('code' in a ? a.code : 'accepted')))).toEqual(new Set(['unauthenticated']));
    await expect(rpcRequest(nc, 'palisade.rpc.auth.verify-api-key', { key: 1 })).rejects.toBeInstanceOf(PalisadeError);
    await expect(rpcRequest(nc, 'palisade.rpc.auth.verify-api-key', { key: 1 })).rejects.toMatchObject({ code: 'validation' });
  });

  it('keys of a service account act as that account (agent principal), bounded by the admin’s scopes', async () => {
    const created = await call('/v1/api-keys', { body: { name: 'bot', serviceAccount: 'ci-bot', scopes: [] }, token: adminToken });
    expect(created.status).toBe(201);
    const res = await call('/v1/tokens/api-key', { body: { apiKey: created.json.apiKey, audience: ['palisade:policy'] } });
    expect(res.status).toBe(200);
    expect(decodeJwt(res.json.accessToken)).toMatchObject({ sub: 'sa-ci-bot', ptp: 'agent', tid: T, aud: 'palisade:policy', scp: [] });
  });

  it('a service account key answers to its sponsor: demoting the sponsor narrows it, disabling the sponsor stops it', async () => {
    const sponsor = await call('/v1/users', { body: { username: 'sally', password: MEMBER_PASSWORD, roles: ['admin'] }, token: adminToken });
    expect(sponsor.status).toBe(201);
    const sallyToken = (await signIn('sally', MEMBER_PASSWORD)).json.accessToken;
    const created = await call('/v1/api-keys', { body: { name: 'deploy', serviceAccount: 'deploy-bot', scopes: ['auth:admin', 'policy:admin'] }, token: sallyToken });
    expect(created.status).toBe(201);
    expect(created.json.owner).toEqual({ type: 'service-account', id: 'deploy-bot', sponsor: sponsor.json.userId });
    const exchange = () => call('/v1/tokens/api-key', { body: { apiKey: created.json.apiKey } });
    expect(decodeJwt((await exchange()).json.accessToken)).toMatchObject({ sub: 'sa-deploy-bot', ptp: 'agent', scp: ['auth:admin', 'policy:admin'] });
    expect((await call(`/v1/users/${sponsor.json.userId}/roles`, { method: 'PUT', body: { roles: ['member'] }, token: adminToken })).status).toBe(204);
    const narrowed = await exchange();
    expect(narrowed.status).toBe(200);
    expect(decodeJwt(narrowed.json.accessToken)).toMatchObject({ sub: 'sa-deploy-bot', scp: [] });
    expect((await call(`/v1/users/${sponsor.json.userId}/disable`, { method: 'POST', token: adminToken })).status).toBe(204);
    expect((await exchange()).status).toBe(401);
  });

  it('rotates with an overlap window: both secrets work, then only the new one', async () => {
    const rotated = await call(`/v1/api-keys/${adminKey.keyId}/rotate`, { body: { overlapSec: 2 }, token: adminToken });
    expect(rotated.status).toBe(200);
    expect(rotated.json.apiKey).not.toBe(adminKey.apiKey);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: adminKey.apiKey } })).status).toBe(200);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: rotated.json.apiKey } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2200));
    expect((await call('/v1/tokens/api-key', { body: { apiKey: adminKey.apiKey } })).status).toBe(401);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: rotated.json.apiKey } })).status).toBe(200);
    expect((await call(`/v1/api-keys/${adminKey.keyId}/rotate`, { body: { overlapSec: 99999999 }, token: adminToken })).status).toBe(400);
    adminKey = { keyId: adminKey.keyId, apiKey: rotated.json.apiKey };
  });

  it('revokes a key: refused at once by auth and, for tokens it bought, by another service within a second', async () => {
    const token = (await call('/v1/tokens/api-key', { body: { apiKey: adminKey.apiKey } })).json.accessToken;
    await verifier.verify(token);
    const t0 = Date.now();
    expect((await call(`/v1/api-keys/${adminKey.keyId}/revoke`, { method: 'POST', token: adminToken })).status).toBe(204);
    // The 1 s bound of revocations is measured in auth.e2e.spec.ts; this suite may share the
    // machine with others, so it allows 2 s and prints what it saw.
    await eventually(() => verifier.verify(token).then(() => false, (e: Error) => /revoked/.test(e.message)), 2000);
    console.log(`API key revocation → refused by another service in ${Date.now() - t0} ms`);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: adminKey.apiKey } })).status).toBe(401);
    expect(new Set((await verifyByRpc(adminKey.apiKey)).map((a) => ('code' in a ? a.code : 'accepted')))).toEqual(new Set(['unauthenticated']));
    expect((await eventsOf('auth.api-key.revoked')).map((e) => e.data)).toEqual([{ keyId: adminKey.keyId, reason: 'owner' }]);
  });

  it('answers malformed API key requests with 4xx and keeps serving', async () => {
    expect((await call('/v1/tokens/api-key', { body: {} })).status).toBe(400);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: 'palisade_zz' } })).status).toBe(401);
    expect((await call('/v1/tokens/api-key', { body: { apiKey: `palisade_${'0'.repeat(24)}_${'A'.repeat(43)}` } })).status).toBe(401);
    expect((await call('/v1/tokens/api-key', { raw: JSON.stringify({ apiKey: 'x'.repeat(2_000_000) }) })).status).toBe(413);
    expect((await call('/v1/api-keys/not-an-id/rotate', { body: {}, token: adminToken })).status).toBe(400);
    expect((await call('/v1/api-keys', { body: { name: 'x', expiresInDays: 5000 }, token: adminToken })).status).toBe(400);
    expect((await call('/health/ready')).status).toBe(200);
  });
});

describe('identity providers and LDAP sign-in (OpenLDAP from deploy/local/ldap.sh)', () => {
  const { seededPasswords: seeded, bindPassword, settings: ldapSettings } = testDirectory;
  const ldapSignIn = (provider: string, username: string, password: string) => call(`/v1/tenants/${T}/sign-in/ldap/${provider}`, { body: { username, password } });

  it('configures providers through the admin API, secrets write-only and never in events', async () => {
    const secret = bindPassword();
    const put = await call('/v1/identity-providers/corp', { method: 'PUT', body: { type: 'ldap', ldap: ldapSettings(infra('LDAP_URL'), false), secret }, token: adminToken });
    expect(put.status).toBe(200);
    const starttls = await call('/v1/identity-providers/corp-starttls', { method: 'PUT', body: { type: 'ldap', ldap: ldapSettings(infra('LDAP_STARTTLS_URL'), true), secret }, token: adminToken });
    expect(starttls.status).toBe(200);
    const oidc = { type: 'oidc', oidc: { issuer: 'https://idp.example.com', clientId: 'palisade' }, secret: 'client-secret-value-123' };
    expect((await call('/v1/identity-providers/okta', { method: 'PUT', body: oidc, token: adminToken })).status).toBe(200);
    const listed = await call('/v1/identity-providers', { token: adminToken });
    expect(listed.json.map((p: { providerId: string; secretSet: boolean }) => [p.providerId, p.secretSet])).toEqual([
      ['corp', true],
      ['corp-starttls', true],
      ['okta', true],
    ]);
    expect(listed.body).not.toContain(secret);
    expect(listed.body).not.toContain('client-secret-value-123');
    const events = JSON.stringify(await eventsOf('auth.identity-provider.configured'));
    expect(events).toContain('"secretChanged":true');
    expect(events).not.toContain(secret);
    expect(events).not.toContain('client-secret-value-123');
    // Bad configurations are 400s naming the field; a member may not configure at all.
    const bad = await call('/v1/identity-providers/x', { method: 'PUT', body: { type: 'ldap', ldap: { ...ldapSettings(infra('LDAP_STARTTLS_URL'), false) }, secret }, token: adminToken });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('startTls');
    expect((await call('/v1/identity-providers/x', { method: 'PUT', body: { type: 'ldap', ldap: { ...ldapSettings(infra('LDAP_URL'), false), caCertificate: 'not a pem' }, secret }, token: adminToken })).status).toBe(400);
    expect((await call('/v1/identity-providers/x', { method: 'PUT', body: { type: 'ldap', ldap: ldapSettings(infra('LDAP_URL'), false) }, token: adminToken })).json.error.message).toContain('secret');
    expect((await call('/v1/identity-providers/x', { method: 'PUT', body: { type: 'kerberos' }, token: adminToken })).status).toBe(400);
    expect((await call('/v1/identity-providers/okta', { method: 'PUT', body: { type: 'saml', saml: {} }, token: adminToken })).status).toBe(400);
    await register('frank');
    const frank = (await signIn('frank', MEMBER_PASSWORD)).json.accessToken;
    expect((await call('/v1/identity-providers/x', { method: 'PUT', body: oidc, token: frank })).status).toBe(403);
    expect((await call('/v1/identity-providers', { token: frank })).status).toBe(403);
  });

  it('signs in directory users over LDAPS and StartTLS, with roles from their groups', async () => {
    const pw = seeded();
    const alice = await ldapSignIn('corp', 'alice', pw.alice);
    expect(alice.status).toBe(200);
    expect(decodeJwt(alice.json.accessToken)).toMatchObject({ tid: T, ptp: 'user', scp: ['auth:admin', 'policy:admin', 'audit:admin', 'agents:manage'] });
    const bob = await ldapSignIn('corp-starttls', 'bob', pw.bob);
    expect(bob.status).toBe(200);
    expect(decodeJwt(bob.json.accessToken).scp).toEqual(['agents:manage']);
    // Provisioned once, as <provider>:<uid>; a second sign-in reuses the account.
    const again = await ldapSignIn('corp', 'alice', pw.alice);
    expect(decodeJwt(again.json.accessToken).sub).toBe(decodeJwt(alice.json.accessToken).sub);
    const users = await call('/v1/users', { token: adminToken });
    expect(users.json.filter((u: { username: string }) => u.username.startsWith('corp')).map((u: { username: string; roles: string[] }) => [u.username, u.roles])).toEqual(
      expect.arrayContaining([
        ['corp:alice', ['admin', 'member']],
        ['corp-starttls:bob', ['member']],
      ]),
    );
    // In no mapped group: refused although the password is right.
    expect((await ldapSignIn('corp', 'carol', pw.carol)).status).toBe(403);
    const signedIn = (await eventsOf('auth.user.signed-in')).filter((e) => e.data.method === 'ldap');
    expect(signedIn.length).toBe(3);
  });

  it('refuses bad credentials and LDAP injection with 401, and keeps serving', async () => {
    const pw = seeded();
    expect((await ldapSignIn('corp', 'alice', `${pw.alice}x`)).status).toBe(401);
    expect((await ldapSignIn('corp', 'nobody', pw.alice)).status).toBe(401);
    // Unescaped, each of these filters would find alice, and her password would sign in.
    for (const injected of ['al*', '*', 'alice)(objectClass=*', 'alice)(|(uid=*)', '*)(uid=alice']) {
      const res = await ldapSignIn('corp', injected, pw.alice);
      expect([injected, res.status]).toEqual([injected, 401]);
    }
    expect((await ldapSignIn('corp', 'alice\u0000', pw.alice)).status).toBe(400);
    expect((await ldapSignIn('corp', 'alice', '')).status).toBe(400);
    expect((await ldapSignIn('nope', 'alice', pw.alice)).status).toBe(404);
    expect((await ldapSignIn('okta', 'alice', pw.alice)).status).toBe(404);
    expect((await ldapSignIn('Bad_Id', 'alice', pw.alice)).status).toBe(400);
    const failed = (await eventsOf('auth.user.sign-in-failed')).filter((e) => e.data.method === 'ldap');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(failed)).not.toContain(pw.alice);
    expect((await call('/health/ready')).status).toBe(200);
    expect((await ldapSignIn('corp', 'alice', pw.alice)).status).toBe(200);
  });

  it('removes a provider and its secret: sign-in through it is 404', async () => {
    expect((await call('/v1/identity-providers/corp-starttls', { method: 'DELETE', token: adminToken })).status).toBe(204);
    expect((await call('/v1/identity-providers/corp-starttls', { method: 'DELETE', token: adminToken })).status).toBe(404);
    expect((await ldapSignIn('corp-starttls', 'bob', seeded().bob)).status).toBe(404);
  });
});

describe('OIDC sign-in against a real OpenID Provider (oidc-provider, in this process)', () => {
  let op: TestOp;
  const login = (query = '') => call(`/v1/tenants/${T}/sso/oidc/idp/login${query}`);
  /** Browser: our login → the provider (signs in, consents) → back at our callback. */
  async function roundTrip(): Promise<{ authorize: URL; callback: URL }> {
    const start = await login();
    expect(start.status).toBe(302);
    const authorize = new URL(String(start.headers.location));
    const callback = new URL(await op.browse(authorize.toString()));
    return { authorize, callback };
  }
  const finish = (callback: URL) => call(`${callback.pathname}${callback.search}`);

  beforeAll(async () => {
    op = await startTestOp({ pkiDir: infra('PALISADE_PKI_DIR'), port: 13651, redirectUri: `https://localhost:${PORT}/v1/sso/oidc/callback` });
    const put = await call('/v1/identity-providers/idp', {
      method: 'PUT',
      body: { type: 'oidc', oidc: { issuer: op.issuer, clientId: 'palisade', caCertificate: op.caPem, scopes: ['openid', 'email', 'groups'], groupsClaim: 'groups', groupRoles: { 'idp-admins': 'admin' } }, secret: op.clientSecret },
      token: adminToken,
    });
    expect(put.status).toBe(200);
  });
  afterAll(async () => op?.close());

  it('signs in with the authorization code flow, PKCE S256, state and nonce, roles from the groups claim', async () => {
    op.loginAs('olivia', ['idp-admins']);
    const { authorize, callback } = await roundTrip();
    expect(authorize.origin).toBe(op.issuer);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(authorize.searchParams.get('state')).toBeTruthy();
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(callback.pathname).toBe('/v1/sso/oidc/callback');
    const done = await finish(callback);
    expect(done.status).toBe(200);
    expect(decodeJwt(done.json.accessToken)).toMatchObject({ tid: T, ptp: 'user', scp: ['auth:admin', 'policy:admin', 'audit:admin', 'agents:manage'] });
    expect(done.json.refreshToken).toMatch(/^prt_/);
    // The code and state are good once.
    expect((await finish(callback)).status).toBe(401);
    const users = await call('/v1/users', { token: adminToken });
    expect(users.json.map((u: { username: string }) => u.username)).toContain('idp:olivia');
  });

  it('honours the tenant’s mandatory 2FA: an OIDC sign-in gets the one-time enrolment grant, not tokens; an access token cannot enrol', async () => {
    op.loginAs('oscar', []);
    const before = await finish((await roundTrip()).callback);
    expect(before.status).toBe(200);
    const oscarToken = before.json.accessToken;
    expect((await call('/v1/tenant/mfa', { method: 'PUT', body: { required: true }, token: adminToken })).status).toBe(200);
    try {
      const res = await finish((await roundTrip()).callback);
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ status: 'mfa_enrolment_required', mfaToken: expect.stringMatching(/^pmc_/), expiresIn: 300 });
      // The token of the earlier (password-less, second-factor-less) session cannot enrol.
      const bySession = await call('/v1/me/mfa/totp', { method: 'POST', token: oscarToken });
      expect(bySession.status).toBe(403);
      expect(bySession.json.error.message).toContain('enrolment grant');
      // The grant can, once, and completes the OIDC sign-in.
      const enrolmentToken = res.json.mfaToken;
      const begun = await call('/v1/mfa/enrolment', { body: { enrolmentToken } });
      expect(begun.status).toBe(200);
      const done = await call('/v1/mfa/enrolment/confirm', { body: { enrolmentToken, code: totpCode(begun.json.secret, new Date()) } });
      expect(done.status).toBe(200);
      expect(decodeJwt(done.json.accessToken)).toMatchObject({ tid: T, ptp: 'user' });
      // Enrolled: the next OIDC sign-in asks for the code.
      expect((await finish((await roundTrip()).callback)).json.status).toBe('mfa_required');
    } finally {
      expect((await call('/v1/tenant/mfa', { method: 'PUT', body: { required: false }, token: adminToken })).status).toBe(200);
    }
  });

  it('follows the provider’s key rotation (JWKS fetched again for a new kid)', async () => {
    op.loginAs('olivia', []);
    const before = decodeJwt((await finish((await roundTrip()).callback)).json.accessToken).sub;
    op.rotateKeys();
    const after = await finish((await roundTrip()).callback);
    expect([after.status, after.json.error?.message]).toEqual([200, undefined]);
    expect(decodeJwt(after.json.accessToken)).toMatchObject({ sub: before, scp: ['agents:manage'] });
  });

  it('refuses a tampered or unknown state, an error answer, and a provider that refuses the client', async () => {
    const { callback } = await roundTrip();
    const tampered = new URL(callback);
    tampered.searchParams.set('state', `${callback.searchParams.get('state')}x`);
    expect((await finish(tampered)).status).toBe(401);
    const start = await login();
    const state = new URL(String(start.headers.location)).searchParams.get('state');
    expect((await call(`/v1/sso/oidc/callback?state=${state}&error=access_denied`)).status).toBe(401);
    expect((await call('/v1/sso/oidc/callback?code=abc')).status).toBe(400);
    expect((await call(`/v1/tenants/${T}/sso/oidc/nope/login`)).status).toBe(404);
    expect((await call(`/v1/tenants/${T}/sso/oidc/corp/login`)).status).toBe(404); // an LDAP provider
    // The client secret is wrong: the provider refuses the code exchange.
    const wrong = await call('/v1/identity-providers/idp-wrong', {
      method: 'PUT',
      body: { type: 'oidc', oidc: { issuer: op.issuer, clientId: 'palisade', caCertificate: op.caPem }, secret: 'not-the-secret' },
      token: adminToken,
    });
    expect(wrong.status).toBe(200);
    const started = await call(`/v1/tenants/${T}/sso/oidc/idp-wrong/login`);
    const back = new URL(await op.browse(String(started.headers.location)));
    const refused = await finish(back);
    expect(refused.status).toBe(401);
    expect(refused.json.error.message).toContain('OIDC sign-in refused');
    expect((await call('/health/ready')).status).toBe(200);
  });
});

describe('SAML 2.0 service provider (assertions signed with a real IdP key)', () => {
  const IDP = 'https://idp.test/saml';
  const sp = `https://localhost:${PORT}/v1/tenants/${T}/sso/saml/saml-idp`;
  const acs = `${sp}/acs`;
  let idp: IdpKey;
  let attacker: IdpKey;
  const post = (xml: string) =>
    call(`/v1/tenants/${T}/sso/saml/saml-idp/acs`, { raw: new URLSearchParams({ SAMLResponse: Buffer.from(xml).toString('base64') }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  /** A fresh SP-initiated login: the AuthnRequest ID the response must answer. */
  async function requestId(): Promise<string> {
    const res = await call(`/v1/tenants/${T}/sso/saml/saml-idp/login`);
    expect(res.status).toBe(302);
    expect(String(res.headers.location)).toMatch(/^https:\/\/idp\.test\/sso\?SAMLRequest=/);
    return authnRequestId(String(res.headers.location));
  }
  /** A correctly signed response to a fresh request, unless told otherwise. */
  async function response(o: { nameId?: string; audience?: string; recipient?: string; issuedAtSec?: number; validForSec?: number; key?: IdpKey | null; inResponseTo?: string } = {}) {
    const inResponseTo = o.inResponseTo ?? (await requestId());
    const id = `_a${randomBytes(8).toString('hex')}`;
    const a = { idp: IDP, inResponseTo, recipient: o.recipient ?? acs, audience: o.audience ?? sp, nameId: o.nameId ?? 'sam', groups: ['saml-admins'], issuedAtSec: o.issuedAtSec, validForSec: o.validForSec };
    const xml = responseXml(a, assertionXml(a, id));
    return o.key === null ? xml : sign(xml, id, o.key ?? idp);
  }

  beforeAll(async () => {
    idp = await idpKey('idp.test');
    attacker = await idpKey('idp.test');
    const put = await call('/v1/identity-providers/saml-idp', {
      method: 'PUT',
      body: { type: 'saml', saml: { idpEntityId: IDP, ssoUrl: 'https://idp.test/sso', idpCertificates: [idp.certPem], groupsAttribute: 'groups', groupRoles: { 'saml-admins': 'admin' } } },
      token: adminToken,
    });
    expect(put.status).toBe(200);
  });

  it('serves SP metadata', async () => {
    const res = await call(`/v1/tenants/${T}/sso/saml/saml-idp/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('application/samlmetadata+xml');
    expect(res.body).toContain(`entityID="${sp}"`);
    expect(res.body).toContain(`Location="${acs}"`);
    expect(res.body).toContain('WantAssertionsSigned="true"');
  });

  it('signs in with a signed assertion answering our request, once', async () => {
    const xml = await response();
    const ok = await post(xml);
    expect([ok.status, ok.json.error?.message]).toEqual([200, undefined]);
    expect(decodeJwt(ok.json.accessToken)).toMatchObject({ tid: T, scp: ['auth:admin', 'policy:admin', 'audit:admin', 'agents:manage'] });
    const replay = await post(xml);
    expect(replay.status).toBe(401);
    expect((await call('/v1/users', { token: adminToken })).json.map((u: { username: string }) => u.username)).toContain('saml-idp:sam');
  });

  it('refuses unsigned, re-signed, expired, misaddressed and unsolicited assertions', async () => {
    const cases: Array<[string, string]> = [
      ['unsigned', await response({ key: null })],
      ['re-signed with another key', await response({ key: attacker })],
      ['expired', await response({ issuedAtSec: -3600, validForSec: 600 })],
      ['another audience', await response({ audience: 'https://other-sp.example/saml' })],
      ['another recipient', await response({ recipient: 'https://evil.example/acs' })],
      ['unknown InResponseTo', await response({ inResponseTo: '_never-requested' })],
    ];
    for (const [name, xml] of cases) {
      const res = await post(xml);
      expect([name, res.status]).toEqual([name, 401]);
      expect(res.json.error.message).toContain('SAML sign-in refused');
    }
  });

  it('refuses XML signature wrapping: the signed assertion is not the one used', async () => {
    // XSW: the IdP signed an assertion for "sam"; an evil one for "mallory" comes first, the
    // signed one kept elsewhere (a sibling after or before, inside the evil one's Advice or
    // in an Extensions element). Each answers a fresh request of ours.
    const variants: Array<(evil: string, signed: string) => string> = [
      (evil, signed) => evil + signed,
      (evil, signed) => signed + evil,
      (evil, signed) => evil.replace('</saml:Subject>', `</saml:Subject><saml:Advice>${signed}</saml:Advice>`),
      (evil, signed) => evil.replace('<saml:Issuer>', `<samlp:Extensions xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">${signed}</samlp:Extensions><saml:Issuer>`),
    ];
    for (const wrap of variants) {
      const inResponseTo = await requestId();
      const signedId = `_a${randomBytes(8).toString('hex')}`;
      const base = { idp: IDP, inResponseTo, recipient: acs, audience: sp, groups: ['saml-admins'] };
      const signed = sign(responseXml(base, assertionXml({ ...base, nameId: 'sam' }, signedId)), signedId, idp);
      const signedAssertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(signed)![0];
      const evil = assertionXml({ ...base, nameId: 'mallory' }, `_evil${randomBytes(4).toString('hex')}`);
      const res = await post(responseXml(base, wrap(evil, signedAssertion)));
      expect(res.status).toBe(401);
    }
    expect((await call('/v1/users', { token: adminToken })).json.map((u: { username: string }) => u.username)).not.toContain('saml-idp:mallory');
  });

  it('answers malformed posts with 4xx and keeps serving', async () => {
    const truncated = (await response()).slice(0, 300);
    expect((await post(truncated)).status).toBe(401);
    expect((await call(`/v1/tenants/${T}/sso/saml/saml-idp/acs`, { raw: 'SAMLResponse=%%%', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(400);
    expect((await call(`/v1/tenants/${T}/sso/saml/saml-idp/acs`, { body: { SAMLResponse: 'x' } })).status).toBe(400);
    expect((await call(`/v1/tenants/${T}/sso/saml/saml-idp/acs`, { raw: `SAMLResponse=${'A'.repeat(300_000)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(413);
    expect((await call(`/v1/tenants/${T}/sso/saml/nope/acs`, { raw: 'SAMLResponse=AAAA', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(404);
    expect((await call('/health/ready')).status).toBe(200);
  });
});
