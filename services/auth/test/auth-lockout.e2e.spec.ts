import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { decodeJwt } from 'jose';
import { eventually, infra, startSealPersonalStandIn } from '@palisade/testing';
import { httpsCaller, testDirectory, type Reply } from './e2e-support';

// The built auth service on port 15301 (offset 8200) in a schema of its own, with an
// account lockout of 3 (2 s base): requests race as an attacker sends them, all at once.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 15301;
const THRESHOLD = 3;
const schema = `auth_lock_${randomBytes(4).toString('hex')}`;
const tenant = `lock-${randomBytes(3).toString('hex')}`;
const logDir = join(infra('PALISADE_HOME'), 'logs', `auth-lockout-e2e-${randomBytes(3).toString('hex')}`);
const ADMIN_PASSWORD = 'Admin-Password-1234';
const WRONG = 'Wrong-Password-999';

const call = httpsCaller(PORT);
const signIn = (username: string, password: string) => call(`/v1/tenants/${tenant}/sign-in`, { body: { username, password } });
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_auth', user: 'palisade_auth_owner' });

let handles: Array<{ stop(): Promise<unknown> }> = [];
/** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
let adminToken: string;

/** Statuses of replies, counted: `{ 401: 3, 429: 27 }`. */
const tally = (replies: Reply[]) => replies.reduce<Record<number, number>>((t, r) => ({ ...t, [r.status]: (t[r.status] ?? 0) + 1 }), {});
/** No reply is a concurrency error (409) or a server error: every one is a credential answer. */
const onlyCredentialAnswers = (replies: Reply[]) => {
  for (const r of replies) expect([r.status, r.json?.error?.message ?? '']).toEqual([expect.any(Number), expect.not.stringContaining('stream')]);
  expect(replies.filter((r) => r.status === 409 || r.status >= 500)).toEqual([]);
};

async function eventsOf(where: string, params: unknown[]): Promise<Array<{ stream_id: string; envelope: { type: string; data: Record<string, unknown>; actor: { id: string } } }>> {
  const c = owner();
  await c.connect();
  try {
    return (await c.query(`SELECT stream_id, envelope FROM ${schema}.events WHERE tenant_id = $1 AND ${where} ORDER BY global_position`, [tenant, ...params])).rows;
  } finally {
    await c.end();
  }
}

async function newUser(username: string, password: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call('/v1/users', { token: adminToken, body: { username, password, ...extra } });
  expect(res.status).toBe(201);
  return res.json.userId as string;
}

beforeAll(async () => {
  const c = owner();
  await c.connect();
  await c.query(`CREATE SCHEMA ${schema}`);
  await c.end();
  const dir = mkdtempSync(join(tmpdir(), 'auth-lockout-e2e-'));
  writeFileSync(join(dir, 'bootstrap.token'), randomBytes(32).toString('base64url'), { mode: 0o600 });
  sealing = await startSealPersonalStandIn();
  handles = runner.startServices({
    services: ['auth'],
    portOffset: 8200,
    logDir,
    env: {
      LOG_LEVEL: 'info',
      PG_SCHEMA: schema,
      AUTH_JWKS_URL: `https://127.0.0.1:${PORT}/.well-known/jwks.json`,
      AUTH_BOOTSTRAP_TOKEN_FILE: join(dir, 'bootstrap.token'),
      AUTH_OPERATOR_TENANT: tenant,
      AUTH_LOCKOUT_THRESHOLD: String(THRESHOLD),
      AUTH_LOCKOUT_BASE_SEC: '2',
      // Every request comes from 127.0.0.1: the per-address lockout is not what is tested here.
      AUTH_ADDRESS_LOCKOUT_THRESHOLD: '10000',
    },
  });
  await runner.waitReady(handles, { timeoutMs: 90000 });
  const body = { tenantId: tenant, tenantName: 'Lock', admin: { username: 'root', password: ADMIN_PASSWORD } };
  const created = await call('/v1/bootstrap', { body, headers: { authorization: `Bootstrap ${readFileSync(join(dir, 'bootstrap.token'), 'utf8')}` } });
  expect(created.status).toBe(201);
  adminToken = (await signIn('root', ADMIN_PASSWORD)).json.accessToken;
}, 120000);

afterAll(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await sealing?.stop();
  const c = owner();
  await c.connect();
  await c.query(`DROP SCHEMA ${schema} CASCADE`);
  await c.end();
});

describe('auth lockout under parallel attempts', () => {
  it('checks at most the threshold of 30 parallel wrong passwords for one account (any spelling), refuses the rest with 429, never 409', async () => {
    const userId = await newUser('erin', 'Erin-Password-1234');
    const spellings = ['erin', 'ERIN', 'Erin'];
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => signIn(spellings[i % spellings.length], WRONG)));
    onlyCredentialAnswers(replies);
    const counted = tally(replies);
    expect(counted[401] ?? 0).toBeGreaterThan(0);
    expect(counted[401]).toBeLessThanOrEqual(THRESHOLD);
    expect(counted[429]).toBe(30 - counted[401]);

    // The history says the same: one failure per checked password, one lock, one throttled refusal per 429.
    const events = (await eventsOf(`envelope->'data'->>'userId' = $2`, [userId])).map((r) => ({ stream: r.stream_id, ...r.envelope }));
    const failed = events.filter((e) => e.type === 'auth.user.sign-in-failed');
    expect(failed.filter((e) => e.data.reason === 'bad_credentials')).toHaveLength(counted[401]);
    expect(failed.filter((e) => e.data.reason === 'throttled')).toHaveLength(counted[429]);
    expect(events.filter((e) => e.type === 'auth.user.locked-out')).toHaveLength(1);
    expect(events.find((e) => e.type === 'auth.user.locked-out')!.data).toMatchObject({ scope: 'account', failures: THRESHOLD });

    // The lock runs out: the right password signs in, and clears the count.
    await eventually(async () => (await signIn('erin', 'Erin-Password-1234')).status === 200, 6000, 250);
    expect((await signIn('erin', WRONG)).status).toBe(401);
    expect((await signIn('erin', 'Erin-Password-1234')).status).toBe(200);
  }, 30000);

  it('answers 30 parallel unknown usernames with 401 (none 409), each failure a stream of its own', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `nobody-${i}-${randomBytes(2).toString('hex')}`);
    const replies = await Promise.all(names.map((n) => signIn(n, WRONG)));
    onlyCredentialAnswers(replies);
    expect(tally(replies)).toEqual({ 401: 30 });
    const failed = await eventsOf(`event_type = 'auth.user.sign-in-failed' AND envelope->'data'->>'userId' IS NULL`, []);
    const streams = new Set(failed.map((r) => r.stream_id));
    expect(streams.size).toBe(failed.length);
    expect(failed.length).toBeGreaterThanOrEqual(30);

    // One unknown name tried 30 times at once is locked like an account.
    const same = await Promise.all(Array.from({ length: 30 }, () => signIn('nobody-at-all', WRONG)));
    onlyCredentialAnswers(same);
    expect(tally(same)[401]).toBeLessThanOrEqual(THRESHOLD);
  }, 30000);

  it('locks a directory account on its entry: " alice", "ALICE" and "alice" are one account', async () => {
    const put = await call('/v1/identity-providers/corp', { method: 'PUT', body: { type: 'ldap', ldap: testDirectory.settings(), secret: testDirectory.bindPassword() }, token: adminToken });
    expect(put.status).toBe(200);
    const ldapSignIn = (username: string, password: string) => call(`/v1/tenants/${tenant}/sign-in/ldap/corp`, { body: { username, password } });
    const pw = testDirectory.seededPasswords();
    expect((await ldapSignIn('alice', pw.alice)).status).toBe(200); // provisions corp:alice
    const spellings = [' alice', 'ALICE', 'alice', 'alice '];
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => ldapSignIn(spellings[i % spellings.length], `${pw.alice}x`)));
    onlyCredentialAnswers(replies);
    const counted = tally(replies);
    expect(counted[401]).toBeLessThanOrEqual(THRESHOLD);
    expect(counted[429]).toBe(12 - counted[401]);
    // Locked for every spelling, the right password included.
    expect((await ldapSignIn(' alice', pw.alice)).status).toBe(429);
    await eventually(async () => (await ldapSignIn('alice', pw.alice)).status === 200, 6000, 250);
  }, 30000);

  it('counts the current password of /v1/me/password in the lockout, and a change ends the other sessions', async () => {
    await newUser('fay', 'Fay-Password-1234');
    const here = (await signIn('fay', 'Fay-Password-1234')).json;
    const elsewhere = (await signIn('fay', 'Fay-Password-1234')).json;
    const change = (currentPassword: string, newPassword = 'Fay-Password-5678') => call('/v1/me/password', { token: here.accessToken, body: { currentPassword, newPassword } });

    const guesses = await Promise.all(Array.from({ length: 12 }, () => change(WRONG)));
    onlyCredentialAnswers(guesses);
    const counted = tally(guesses);
    expect(counted[401]).toBeLessThanOrEqual(THRESHOLD);
    expect(counted[429]).toBe(12 - counted[401]);
    // The same lockout as sign-in: the account is locked there too.
    expect((await signIn('fay', 'Fay-Password-1234')).status).toBe(429);

    await eventually(async () => (await change('Fay-Password-1234')).status === 204, 6000, 250);
    // The other session is over: its refresh token buys nothing, its access token is refused.
    expect((await call('/v1/token/refresh', { body: { refreshToken: elsewhere.refreshToken } })).status).toBe(401);
    await eventually(async () => (await call('/v1/sign-out', { method: 'POST', token: elsewhere.accessToken })).status === 401, 2000, 20);
    // The session the change was made from goes on.
    const refreshed = await call('/v1/token/refresh', { body: { refreshToken: here.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(refreshed.json.sessionId).toBe(here.sessionId);
    expect((await signIn('fay', 'Fay-Password-5678')).status).toBe(200);
    const revoked = await eventsOf(`event_type = 'auth.user.session-revoked' AND envelope->'data'->>'userId' = $2`, [decodeJwt(here.accessToken).sub]);
    expect(revoked.map((r) => r.envelope.data)).toEqual([expect.objectContaining({ sessionId: elsewhere.sessionId, reason: 'password_changed' })]);
  }, 30000);
});

describe('concurrent registrations', () => {
  it('answers one 201 and 409 naming `username` for the others, and logs no username or e-mail', async () => {
    const username = `racer-${randomBytes(3).toString('hex')}`;
    const email = `${username}@mail.example`;
    const replies = await Promise.all(Array.from({ length: 6 }, () => call('/v1/users', { token: adminToken, body: { username, email, password: 'Racer-Password-1234' } })));
    expect(tally(replies)).toEqual({ 201: 1, 409: 5 });
    for (const r of replies.filter((x) => x.status === 409)) {
      expect(r.json.error).toMatchObject({ code: 'conflict', message: expect.stringContaining('username') });
      expect(JSON.stringify(r.json)).not.toContain(username);
    }
    const users = await call('/v1/users', { token: adminToken });
    expect(users.json.filter((u: { username: string }) => u.username === username)).toHaveLength(1);
    const log = readFileSync(join(logDir, 'auth.log'), 'utf8');
    expect(log).not.toContain(username);
    expect(log).not.toContain(email);
  }, 30000);
});
