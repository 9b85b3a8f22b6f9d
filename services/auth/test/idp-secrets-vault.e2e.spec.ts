import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { audienceOf } from '@palisade/auth-verifier';
import { PalisadeError, rpcSubject } from '@palisade/contracts';
import { connectNats, rpcRequest, type NatsConnection } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { infra, startSealPersonalStandIn, TestTokenIssuer } from '@palisade/testing';
import { httpsCaller, testDirectory } from './e2e-support';
import { startTestOp, type TestOp } from './oidc-op';

// Identity-provider secrets in the vault: the built auth AND credential services as
// processes (port offset 7500: auth 14601, credential 14603), each in a schema of its own,
// auth configured with AUTH_IDP_SECRETS=vault, asking the vault over NATS request-reply
// (palisade.rpc.credential.service-secret-*) with its own certificate. Every credential
// instance on the shared development NATS answers in the queue group `credential`: run it
// while no other credential service (npm start, another e2e run) is on the same NATS.
// An LDAP provider (OpenLDAP of deploy/local/ldap.sh) is configured through auth's admin
// API; its bind password must live only in the vault, every read recorded there.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { seedDemo } = require('../../../scripts/seed-demo.js');
const OFFSET = 7500;
const AUTH_PORT = 7101 + OFFSET;
const CRED_PORT = 7103 + OFFSET;
const auth = httpsCaller(AUTH_PORT);
const vault = httpsCaller(CRED_PORT);
const run = randomBytes(4).toString('hex');
const authSchema = `auth_idpv_${run}`;
const credSchema = `cred_idpv_${run}`;
const dir = mkdtempSync(join(tmpdir(), 'idp-vault-'));
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'e2e-idp-vault');
const T = 'demo';

const pg = (db: 'auth' | 'credential') => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: `palisade_${db}`, user: `palisade_${db}_owner` });
async function query<T>(db: 'auth' | 'credential', sql: string, params: unknown[] = []): Promise<T[]> {
  const c = pg(db);
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}
const vaultEvents = (type: string) =>
  query<{ envelope: { actor: { type: string; id: string }; data: Record<string, unknown> } }>(
    'credential',
    `SELECT envelope FROM ${credSchema}.events WHERE tenant_id = $1 AND event_type = $2 ORDER BY global_position`,
    [T, type],
  ).then((rows) => rows.map((r) => r.envelope));

let handles: Array<{ stop(): Promise<unknown> }> = [];
/** Seals the personal data the service stores, as audit would (audit is not started here; without it the writes fail closed). */
let sealing: Awaited<ReturnType<typeof startSealPersonalStandIn>> | undefined;
let issuer: TestTokenIssuer;
let asAuth: ServiceIdentity;
let asBilling: ServiceIdentity;
let authNc: NatsConnection;
let billingNc: NatsConnection;
let adminToken = '';
const markers: string[] = [];
const marker = () => {
  const m = `PALISADE-MARKER-${randomBytes(12).toString('hex')}`;
  markers.push(m);
  return m;
};
const READ = rpcSubject('credential', 'service-secret-read');
const PUT = rpcSubject('credential', 'service-secret-put');
/** The vault's answer to a service-secret request: its result, or its coded error. */
const ask = (nc: NatsConnection, subject: string, payload: object) =>
  rpcRequest<Record<string, unknown>>(nc, subject, payload, { timeoutMs: 3000 }).then(
    (result) => ({ result }),
    (e: PalisadeError) => ({ code: e.code, message: e.message }),
  );

const { seededPasswords: seeded, bindPassword } = testDirectory;
const ldap = testDirectory.settings();
const configure = (secret?: string) => auth('/v1/identity-providers/corp', { method: 'PUT', body: { type: 'ldap', ldap, ...(secret === undefined ? {} : { secret }) }, token: adminToken });
const ldapSignIn = (username: string, password: string) => auth(`/v1/tenants/${T}/sign-in/ldap/corp`, { body: { username, password } });
const storedInAuth = () =>
  query<{ sealed: Buffer | null; secret_id: string | null; secret_version: number | null }>('auth', `SELECT sealed, secret_id, secret_version FROM ${authSchema}.identity_provider_secrets WHERE tenant_id = $1 AND provider_id = 'corp'`, [T]);

beforeAll(async () => {
  await query('auth', `CREATE SCHEMA ${authSchema}`);
  await query('credential', `CREATE SCHEMA ${credSchema}`);
  rmSync(LOG_DIR, { recursive: true, force: true });
  issuer = await TestTokenIssuer.create(audienceOf('credential'));
  sealing = await startSealPersonalStandIn();
  handles = runner.startServices({
    services: ['auth', 'credential'],
    portOffset: OFFSET,
    logDir: LOG_DIR,
    env: { LOG_LEVEL: 'trace' },
    envFor: (name: string) =>
      name === 'auth'
        ? {
            PG_SCHEMA: authSchema,
            AUTH_JWKS_URL: `https://127.0.0.1:${AUTH_PORT}/.well-known/jwks.json`,
            AUTH_BOOTSTRAP_TOKEN_FILE: join(dir, 'auth', 'bootstrap.token'),
            AUTH_IDP_SECRETS: 'vault',
          }
        : {
            PG_SCHEMA: credSchema,
            // Tokens the test signs (for the vault's public API), as in credential.e2e.
            AUTH_JWKS: issuer.jwks,
            CREDENTIAL_MASTER_KEY_FILE: join(dir, 'credential', 'master.key'),
          },
  });
  await runner.waitReady(handles, { timeoutMs: 90000 });
  asAuth = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'auth' });
  asBilling = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'billing' });
  authNc = await connectNats({ servers: infra('NATS_URL'), identity: asAuth, name: 'e2e-idp-vault-auth' });
  billingNc = await connectNats({ servers: infra('NATS_URL'), identity: asBilling, name: 'e2e-idp-vault-billing' });
  const seededAdmin = await seedDemo({
    authUrl: `https://127.0.0.1:${AUTH_PORT}`,
    ca: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt')),
    tokenFile: join(dir, 'auth', 'bootstrap.token'),
    markerFile: join(dir, 'auth', 'demo-tenant.json'),
    print: () => undefined,
  });
  const signedIn = await auth(`/v1/tenants/${T}/sign-in`, { body: { username: 'admin@demo.example', password: seededAdmin.password } });
  expect(signedIn.status).toBe(200);
  adminToken = signedIn.json.accessToken;
}, 150000);

afterAll(async () => {
  await Promise.all(handles.map((h) => h.stop()));
  await sealing?.stop();
  await authNc?.close();
  await billingNc?.close();
  asAuth?.stop();
  asBilling?.stop();
  await query('auth', `DROP SCHEMA IF EXISTS ${authSchema} CASCADE`);
  await query('credential', `DROP SCHEMA IF EXISTS ${credSchema} CASCADE`);
  rmSync(dir, { recursive: true, force: true });
});

describe('identity-provider secrets in the credential service', () => {
  let secretId = '';

  it('stores the bind password in the vault (scope auth:idp); auth keeps only the reference', async () => {
    const put = await configure(bindPassword());
    expect(put.status).toBe(200);
    expect(put.body).not.toContain(bindPassword());
    const [row] = await storedInAuth();
    expect(row).toMatchObject({ sealed: null, secret_version: 1 });
    secretId = row.secret_id!;
    const [secret] = await query<{ name: string; scopes: string[]; state: string; current_version: number }>(
      'credential',
      `SELECT name, scopes, state, current_version FROM ${credSchema}.secrets WHERE tenant_id = $1 AND secret_id = $2`,
      [T, secretId],
    );
    expect(secret).toEqual({ name: 'idp.corp', scopes: ['auth:idp'], state: 'active', current_version: 1 });
    const created = await vaultEvents('credential.secret.created');
    expect(created.map((e) => [e.actor, e.data.secretId, e.data.scopes])).toEqual([[{ type: 'service', id: 'auth' }, secretId, ['auth:idp']]]);
    const listed = await auth('/v1/identity-providers/corp', { token: adminToken });
    expect(listed.json).toMatchObject({ providerId: 'corp', secretSet: true });
  });

  it('signs in through LDAP with the password read from the vault, the read recorded there (consumer auth)', async () => {
    const alice = await ldapSignIn('alice', seeded().alice);
    expect(alice.status).toBe(200);
    const reads = await vaultEvents('credential.secret.read');
    expect(reads.map((e) => [e.actor, e.data])).toEqual([[{ type: 'service', id: 'auth' }, { secretId, version: 1, consumer: 'auth', purpose: 'idp-sign-in' }]]);
  });

  it('rotating the bind password through auth makes a new vault version, and sign-in uses it', async () => {
    // A wrong password first: sign-in must fail with it (the directory refuses the bind account) …
    const wrong = marker();
    expect((await configure(wrong)).status).toBe(200);
    expect(await storedInAuth()).toEqual([{ sealed: null, secret_id: secretId, secret_version: 2 }]);
    expect((await ldapSignIn('alice', seeded().alice)).status).toBe(503);
    // … then the right one again: version 3, and sign-in works at once (no stale cache).
    expect((await configure(bindPassword())).status).toBe(200);
    expect(await storedInAuth()).toEqual([{ sealed: null, secret_id: secretId, secret_version: 3 }]);
    expect((await ldapSignIn('alice', seeded().alice)).status).toBe(200);
    const rotated = await vaultEvents('credential.secret.rotated');
    expect(rotated.map((e) => [e.actor.id, e.data.version])).toEqual([
      ['auth', 2],
      ['auth', 3],
    ]);
    const reads = await vaultEvents('credential.secret.read');
    expect(reads.map((e) => e.data.version)).toEqual([1, 2, 3]);
    // Settings without a secret keep the stored one (no vault write).
    expect((await configure()).status).toBe(200);
    expect(await storedInAuth()).toEqual([{ sealed: null, secret_id: secretId, secret_version: 3 }]);
  });

  it('lets only auth ask the service-secret methods over NATS, and only for its own secrets of its own tenant', async () => {
    const read = (nc: NatsConnection, tenantId: string, id: string) => ask(nc, READ, { tenantId, secretId: id, purpose: 'idp-sign-in' });
    const userToken = await issuer.token({ sub: 'u-admin', tid: T, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
    expect(await read(billingNc, T, secretId)).toEqual({ code: 'forbidden', message: `not permitted to request ${READ}` });
    // No HTTPS route serves service secrets any more, to a person's token or to auth's certificate.
    expect((await vault(`/internal/v1/tenants/${T}/service-secrets/${secretId}/read`, { body: { purpose: 'idp-sign-in' }, token: userToken })).status).toBe(404);
    expect((await vault(`/internal/v1/tenants/${T}/service-secrets/${secretId}/read`, { body: { purpose: 'idp-sign-in' }, cert: asAuth.tlsOptions().cert as string, key: asAuth.tlsOptions().key as string })).status).toBe(404);
    expect(await read(authNc, 'other-tenant', secretId)).toMatchObject({ code: 'not_found' });
    expect(await read(authNc, T, 'not-a-uuid')).toMatchObject({ code: 'validation', message: expect.stringContaining('secretId') });
    expect(await ask(authNc, READ, { tenantId: T, secretId })).toMatchObject({ code: 'validation', message: expect.stringContaining('purpose') });
    expect(await ask(billingNc, PUT, { tenantId: T, name: 'idp.x', value: 'v' })).toEqual({ code: 'forbidden', message: `not permitted to request ${PUT}` });
    // A tool secret of the same tenant is not auth's: not found, and its name cannot be taken over.
    const toolSecret = await vault('/v1/secrets', { body: { name: 'gerrit', value: marker(), scopes: ['tool:gerrit'] }, token: userToken });
    expect(toolSecret.status).toBe(201);
    expect(await read(authNc, T, toolSecret.json.id)).toMatchObject({ code: 'not_found' });
    expect(await ask(authNc, PUT, { tenantId: T, name: 'gerrit', value: marker() })).toMatchObject({ code: 'conflict' });
    // Administrators see the secret's metadata through the public API, never its value (no lease: it has no tool scope).
    const meta = await vault(`/v1/secrets/${secretId}`, { token: userToken });
    expect(meta.json).toMatchObject({ id: secretId, name: 'idp.corp', scopes: ['auth:idp'], version: 3, createdBy: 'service:auth' });
    expect((await vault('/v1/leases', { body: { secretId, sessionId: 'sbx-1', tool: 'ldap' }, token: userToken })).status).toBe(403);
    // Auth's own certificate reads it, recorded like any read.
    const own = await ask(authNc, READ, { tenantId: T, secretId, purpose: 'idp-sign-in' });
    expect(own).toMatchObject({ result: { secretId, version: 3 } });
  });

  it('removing the provider shreds its secret in the vault', async () => {
    expect((await auth('/v1/identity-providers/corp', { method: 'DELETE', token: adminToken })).status).toBe(204);
    expect(await storedInAuth()).toEqual([]);
    const shredded = await vaultEvents('credential.secret.shredded');
    expect(shredded.map((e) => [e.actor.id, e.data.secretId])).toEqual([['auth', secretId]]);
    expect((await ldapSignIn('alice', seeded().alice)).status).toBe(404);
  });

  it('signs in through OIDC with the client secret read from the vault', async () => {
    const op: TestOp = await startTestOp({ pkiDir: infra('PALISADE_PKI_DIR'), port: 7151 + OFFSET, redirectUri: `https://localhost:${AUTH_PORT}/v1/sso/oidc/callback` });
    try {
      markers.push(op.clientSecret);
      const put = await auth('/v1/identity-providers/idp', {
        method: 'PUT',
        body: { type: 'oidc', oidc: { issuer: op.issuer, clientId: 'palisade', caCertificate: op.caPem, groupsClaim: 'groups', scopes: ['openid', 'groups'], groupRoles: { 'idp-admins': 'admin' } }, secret: op.clientSecret },
        token: adminToken,
      });
      expect(put.status).toBe(200);
      const [ref] = await query<{ sealed: Buffer | null; secret_id: string }>('auth', `SELECT sealed, secret_id FROM ${authSchema}.identity_provider_secrets WHERE tenant_id = $1 AND provider_id = 'idp'`, [T]);
      expect(ref.sealed).toBeNull();
      op.loginAs('olivia', ['idp-admins']);
      const start = await auth(`/v1/tenants/${T}/sso/oidc/idp/login`);
      expect(start.status).toBe(302);
      const callback = new URL(await op.browse(String(start.headers.location)));
      const done = await auth(`${callback.pathname}${callback.search}`);
      expect(done.status).toBe(200);
      const reads = (await vaultEvents('credential.secret.read')).filter((e) => e.data.secretId === ref.secret_id);
      expect(reads.length).toBeGreaterThanOrEqual(1);
      expect(reads[0].data).toEqual({ secretId: ref.secret_id, version: 1, consumer: 'auth', purpose: 'idp-sign-in' });
    } finally {
      await op.close();
    }
  });

  it('never writes the bind password (or a marker) to either service’s log or the vault’s events', async () => {
    const logs = { auth: readFileSync(join(LOG_DIR, 'auth.log'), 'utf8'), credential: readFileSync(join(LOG_DIR, 'credential.log'), 'utf8') };
    expect(logs.credential).toContain(READ);
    const events = (await query<{ e: string }>('credential', `SELECT envelope::text AS e FROM ${credSchema}.events`)).map((r) => r.e).join('\n');
    const authEvents = (await query<{ e: string }>('auth', `SELECT envelope::text AS e FROM ${authSchema}.events`)).map((r) => r.e).join('\n');
    for (const [where, text] of Object.entries({ ...logs, events, authEvents })) {
      for (const secret of [bindPassword(), ...markers]) expect({ where, leaked: text.includes(secret) }).toEqual({ where, leaked: false });
    }
  });
});
