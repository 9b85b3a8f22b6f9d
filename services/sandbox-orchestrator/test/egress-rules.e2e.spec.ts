import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { Client } from 'pg';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, audienceOf } from '@palisade/auth-verifier';
import { httpsCaller, infra, type CallOptions } from '@palisade/testing';

// The egress rules API of the built sandbox-orchestrator (offset 9800: port 16904,
// instance e2e9800, a schema of its own): tenant administrators only (a person with
// policy:admin; agents administer nothing), ETag / If-Match, validation naming the field,
// another tenant's rule set 404, every change an event of the tenant (the audit chain's
// input). Tokens are signed by a key of the test's own (AUTH_JWKS).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 9800;
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a policy or
// billing instance of another suite on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = 'e2e9800';
const ORCHESTRATOR = 7104 + OFFSET;
const schema = `egress_rules_${randomBytes(4).toString('hex')}`;
const ACME = `acme-${randomBytes(3).toString('hex')}`;
const OTHER = `other-${randomBytes(3).toString('hex')}`;
const SECRET_ID = randomUUID();
const SESSION = '0190b7e4-1c2d-7a3b-8c4d-5e6f7a8b9c0d';
const owner = () => new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_sandbox_orchestrator', user: 'palisade_sandbox_orchestrator_owner' });

jest.setTimeout(90_000);

let key: KeyLike;
let kid: string;
async function token(tenant: string, claims: { sub: string; ptp: 'user' | 'agent'; scp?: string[]; act?: { sub: string } }): Promise<string> {
  return new SignJWT({ tid: tenant, ptp: claims.ptp, ...(claims.scp ? { scp: claims.scp } : {}), ...(claims.act ? { act: claims.act } : {}) })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(ACCESS_TOKEN_ISSUER)
    .setAudience([audienceOf('sandbox-orchestrator')])
    .setSubject(claims.sub)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key);
}

async function eventsOf(tenant: string): Promise<Array<{ type: string; data: { scope: string; rules?: unknown[] }; actor: { type: string; id: string } }>> {
  const c = owner();
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT envelope FROM ${schema}.events WHERE tenant_id = $1 AND event_type LIKE 'sandbox-orchestrator.egress_rules.%' ORDER BY global_position`, [tenant]);
    return rows.map((r) => r.envelope);
  } finally {
    await c.end();
  }
}

describe('egress rules API (built sandbox-orchestrator)', () => {
  let handles: Array<{ stop(): Promise<unknown> }> = [];
  const t: Record<string, string> = {};
  const call = (path: string, who: string, options: CallOptions = {}) => httpsCaller(ORCHESTRATOR)(path, { token: t[who], ...options });
  const gerrit = { id: 'gerrit', host: 'Gerrit.Acme.Test', methods: ['GET'], pathPrefixes: ['/a/changes/'], inject: { secretId: SECRET_ID, tool: 'gerrit', as: { type: 'query', name: 'access_token' } } };

  beforeAll(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    key = pair.privateKey;
    kid = `test-${randomUUID()}`;
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid, use: 'sig', alg: 'EdDSA' }] });
    t.admin = await token(ACME, { sub: 'alice', ptp: 'user', scp: ['policy:admin'] });
    t.member = await token(ACME, { sub: 'bob', ptp: 'user', scp: ['agents:manage'] });
    t.agent = await token(ACME, { sub: 'release-bot', ptp: 'agent', act: { sub: 'alice' }, scp: ['policy:admin'] });
    t.otherAdmin = await token(OTHER, { sub: 'olga', ptp: 'user', scp: ['policy:admin'] });
    const c = owner();
    await c.connect();
    await c.query(`CREATE SCHEMA ${schema}`);
    await c.end();
    handles = runner.startServices({
      services: ['sandbox-orchestrator'],
      portOffset: OFFSET,
      logDir: join(infra('PALISADE_HOME'), 'logs', 'egress-rules-e2e'),
      env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn', PG_SCHEMA: schema, SANDBOX_INSTANCE: 'e2e9800', SANDBOX_BILLING: 'off' },
    });
    await runner.waitReady(handles, { timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    const c = owner();
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  it('a tenant administrator sets the tenant’s rules (validated, names lower-cased) and reads them back with their ETag', async () => {
    const put = await call('/v1/egress-rules/tenant', 'admin', { method: 'PUT', body: { rules: [gerrit, { id: 'pypi', host: '*.pythonhosted.org' }] } });
    expect(put.status).toBe(200);
    expect(put.headers.etag).toBe('"1"');
    expect(put.json).toMatchObject({ scope: 'tenant', etag: 1, rules: [{ id: 'gerrit', host: 'gerrit.acme.test', inject: { as: { type: 'query', name: 'access_token' } } }, { id: 'pypi' }] });
    const get = await call('/v1/egress-rules/tenant', 'admin');
    expect([get.status, get.headers.etag]).toEqual([200, '"1"']);
    const narrowing = await call(`/v1/egress-rules/session:${SESSION}`, 'admin', { method: 'PUT', body: { rules: [{ id: 'changes', host: 'gerrit.acme.test', pathPrefixes: ['/a/changes/1'] }] } });
    expect(narrowing.status).toBe(200);
    const list = await call('/v1/egress-rules', 'admin');
    expect(list.json.items.map((s: { scope: string }) => s.scope)).toEqual([`session:${SESSION}`, 'tenant']);
  });

  it('If-Match: a stale ETag is 409, the current one applies', async () => {
    const stale = await call('/v1/egress-rules/tenant', 'admin', { method: 'PUT', headers: { 'if-match': '"0"' }, body: { rules: [] } });
    expect(stale.status).toBe(409);
    const current = await call('/v1/egress-rules/tenant', 'admin', { method: 'PUT', headers: { 'if-match': '"1"' }, body: { rules: [gerrit] } });
    expect([current.status, current.headers.etag]).toEqual([200, '"2"']);
  });

  it('bad input is a 400 naming the field; a narrower scope names no secret, address or CA', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['tenant', { rules: [{ id: 'x', host: 'not a host' }] }, /rules\.0\.host/],
      ['tenant', { rules: [{ id: 'x', host: 'a.test', ports: [70000] }] }, /rules\.0\.ports/],
      ['tenant', { rules: [{ id: 'x', host: 'a.test', inject: { secretId: 'vault-name', tool: 'x', as: { type: 'header', name: 'X-Key' } } }] }, /secretId/],
      ['tenant', { rules: [{ id: 'x', host: 'a.test', websocket: true, inject: gerrit.inject }] }, /rules\.0\.websocket/],
      ['tenant', { rules: [{ id: 'x', host: 'a.test' }, { id: 'x', host: 'b.test' }] }, /unique/],
      ['agent:release-bot', { rules: [gerrit] }, /rules\.0\.inject: only the tenant's rule set/],
      ['user:alice', { rules: [] }, /scope/],
      ['tenant', { rules: [], extra: true }, /extra|unrecognized/i],
    ];
    for (const [scope, body, problem] of cases) {
      const r = await call(`/v1/egress-rules/${encodeURIComponent(scope)}`, 'admin', { method: 'PUT', body });
      expect([scope, r.status]).toEqual([scope, 400]);
      expect(r.body).toMatch(problem);
    }
  });

  it('agents administer nothing, people without the scope neither; another tenant’s rule set is a 404', async () => {
    for (const who of ['agent', 'member']) {
      expect([who, (await call('/v1/egress-rules/tenant', who)).status]).toEqual([who, 403]);
      expect([who, (await call('/v1/egress-rules/tenant', who, { method: 'PUT', body: { rules: [] } })).status]).toEqual([who, 403]);
      expect([who, (await call('/v1/egress-rules', who)).status]).toEqual([who, 403]);
    }
    expect((await call('/v1/egress-rules/tenant', 'agent')).body).toMatch(/agent administers no egress rules/);
    expect((await call('/v1/egress-rules/tenant', 'otherAdmin')).status).toBe(404);
    expect((await call(`/v1/egress-rules/session:${SESSION}`, 'otherAdmin', { method: 'DELETE' })).status).toBe(404);
    expect((await call('/v1/egress-rules', 'otherAdmin')).json.items).toEqual([]);
    expect((await call('/v1/egress-rules/tenant', 'admin')).json.rules).toHaveLength(1); // untouched
  });

  it('removal (If-Match), then 404; every change is an event of the tenant naming the administrator', async () => {
    expect((await call('/v1/egress-rules/tenant', 'admin', { method: 'DELETE', headers: { 'if-match': '"1"' } })).status).toBe(409);
    expect((await call('/v1/egress-rules/tenant', 'admin', { method: 'DELETE', headers: { 'if-match': '"2"' } })).status).toBe(204);
    expect((await call('/v1/egress-rules/tenant', 'admin')).status).toBe(404);
    const events = await eventsOf(ACME);
    expect(events.map((e) => [e.type, e.data.scope, e.actor.id])).toEqual([
      ['sandbox-orchestrator.egress_rules.set', 'tenant', 'alice'],
      ['sandbox-orchestrator.egress_rules.set', `session:${SESSION}`, 'alice'],
      ['sandbox-orchestrator.egress_rules.set', 'tenant', 'alice'],
      ['sandbox-orchestrator.egress_rules.removed', 'tenant', 'alice'],
    ]);
    expect(await eventsOf(OTHER)).toEqual([]);
  });
});
