import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, DeliverPolicy } from 'nats';
import { Client } from 'pg';
import { EVENTS_STREAM } from '@palisade/contracts';
import { kafkaClient } from '@palisade/kafka';
import { connectNats } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, infra } from '@palisade/testing';
import { startKmsEndpoint, type KmsEndpoint } from './support/aws-json-endpoint';
import { call, TestIssuer } from './support/https';
import { TcpProxy } from './support/tcp-proxy';
import { bindingContext, open, type CipherName } from '../src/crypto/envelope';
import { LocalKeyProvider } from '../src/keys/local-key-provider';

// The built credential service as a process on 14103 (port offset 7000), over its real
// HTTPS API, with real token verification (a JWKS the test owns), SoftHSM2, a local KMS
// endpoint, and NATS reached through a proxy the test can cut.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 7103 + 7000;
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'e2e-credential');
const AUDIT_TOPIC = 'palisade.audit.v1';
/** Each cipher a tenant can choose, with the infix of its tenants' ids. */
const CIPHER_RUNS: Array<[CipherName, string]> = [
  ['aes-256-gcm', '-aes'],
  ['sm4', '-sm4'],
];

describe('credential service', () => {
  let handle: { stop(): Promise<unknown> };
  let issuer: TestIssuer;
  let kms: KmsEndpoint;
  let natsProxy: TcpProxy;
  let sandbox: ServiceIdentity;
  let llmRouter: ServiceIdentity;
  let keyDir: string;
  const startedAt = new Date();
  const run = randomBytes(4).toString('hex');
  const tenantA = `e2e-a-${run}`;
  const markers: string[] = [];
  const leaseTokens: string[] = [];
  const tokens: Record<string, string> = {};

  const marker = () => {
    const m = `PALISADE-MARKER-${randomBytes(12).toString('hex')}`;
    markers.push(m);
    return m;
  };
  const asSandbox = () => ({ cert: sandbox.tlsOptions().cert as string, key: sandbox.tlsOptions().key as string });

  beforeAll(async () => {
    issuer = await TestIssuer.create();
    kms = await startKmsEndpoint();
    const nats = new URL(infra('NATS_URL'));
    natsProxy = new TcpProxy(nats.hostname, Number(nats.port));
    // A fixed port below the ephemeral range: a client retrying an ephemeral port that nobody
    // listens on can connect to itself (TCP simultaneous open) and squat it.
    const proxyPort = await natsProxy.start(Number(nats.port) + 7000);
    keyDir = mkdtempSync(join(tmpdir(), 'palisade-cred-e2e-'));
    rmSync(join(LOG_DIR, 'credential.log'), { force: true });
    [handle] = runner.startServices({
      services: ['credential'],
      portOffset: 7000,
      logDir: LOG_DIR,
      env: {
        LOG_LEVEL: 'trace',
        AUTH_JWKS: issuer.jwks,
        NATS_URL: `tls://127.0.0.1:${proxyPort}`,
        CREDENTIAL_KEY_PROVIDERS: 'local,pkcs11,aws-kms',
        CREDENTIAL_MASTER_KEY_FILE: join(keyDir, 'master.key'),
        AWS_REGION: 'eu-central-1',
        AWS_KMS_ENDPOINT: kms.url,
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'not-a-real-secret-e2e',
        CREDENTIAL_MAINTENANCE_INTERVAL_MS: '500',
      },
    });
    sandbox = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'sandbox-orchestrator' });
    llmRouter = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'llm-router' });
    const admin = ['credential:admin', 'credential:use'];
    tokens.adminA = await issuer.token({ sub: 'u-admin-a', tid: tenantA, ptp: 'user', scp: admin });
    tokens.agentA = await issuer.token({ sub: 'agent-a', tid: tenantA, ptp: 'agent', act: 'u-1', scp: ['credential:use', 'credential:read', 'credential:admin'] });
    tokens.readerA = await issuer.token({ sub: 'u-reader-a', tid: tenantA, ptp: 'user', scp: ['credential:read'] });
    await runner.waitReady([handle], { timeoutMs: 90000 });
  }, 120000);

  afterAll(async () => {
    await handle?.stop();
    await natsProxy?.cut();
    await kms?.close();
    sandbox?.stop();
    llmRouter?.stop();
    rmSync(keyDir, { recursive: true, force: true });
  });

  const create = async (token: string, name: string, value: string, scopes = ['tool:gerrit']) => {
    const r = await call(PORT, 'POST', '/v1/secrets', { token, body: { name, value, scopes } });
    expect(r.status).toBe(201);
    return r.json as { id: string; version: number; etag: number };
  };
  const grant = async (token: string, secretId: string, body: Record<string, unknown> = {}) => {
    const r = await call(PORT, 'POST', '/v1/leases', { token, body: { secretId, sessionId: 'sbx-1', tool: 'gerrit', ...body } });
    if (r.status === 201) leaseTokens.push(r.json.token);
    return r;
  };
  const redeem = (body: Record<string, unknown>, tls = asSandbox()) => call(PORT, 'POST', '/internal/v1/leases/redeem', { body, ...tls });

  it('authenticates every route with a verified access token and validates input naming the field', async () => {
    expect((await call(PORT, 'GET', '/v1/secrets')).status).toBe(401);
    const forged = await (await TestIssuer.create()).token({ sub: 'x', tid: tenantA, ptp: 'user', scp: ['credential:admin'] });
    expect((await call(PORT, 'GET', '/v1/secrets', { token: forged })).status).toBe(401);
    const bad = await call(PORT, 'POST', '/v1/secrets', { token: tokens.adminA, body: { name: 'x', value: 'v', scopes: ['gerrit'] } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain('scopes.0: must be tool:<name>');
    const tooLong = await call(PORT, 'POST', '/v1/leases', { token: tokens.agentA, body: { secretId: '01a20143-b6e6-72cb-8b2c-ba2513c57961', sessionId: 's', tool: 'gerrit', ttlSeconds: 120 } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error.message).toContain('ttlSeconds: must be at most 60');
    expect((await call(PORT, 'POST', '/v1/secrets', { token: tokens.readerA, body: { name: 'x', value: 'v', scopes: [] } })).status).toBe(403);
    const agentCreate = await call(PORT, 'POST', '/v1/secrets', { token: tokens.agentA, body: { name: 'x', value: 'v', scopes: [] } });
    expect(agentCreate.status).toBe(403);
    expect(agentCreate.json.error.message).toBe('an agent may not create credentials');
    const openapi = (await call(PORT, 'GET', '/docs/openapi.json')).json;
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/secrets', '/v1/secrets/{id}', '/v1/leases', '/internal/v1/leases/redeem', '/v1/keys', '/v1/keys/rotate']));
  });

  it('sm4 on SoftHSM2 is a 400 naming the mechanism, at configuration time', async () => {
    const hsm = `e2e-sm4-hsm-${run}`;
    const hsmToken = await issuer.token({ sub: 'u-sm4', tid: hsm, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
    const refused = await call(PORT, 'POST', '/v1/keys', { token: hsmToken, body: { provider: 'pkcs11', cipher: 'sm4' } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toContain('cannot hold SM4 key-encryption keys');
    expect(refused.json.error.message).toContain('CKM_AES_GCM');
  });

  // The behaviour, once per cipher: each run has its own tenants, provisioned with that cipher.
  describe.each(CIPHER_RUNS)('with cipher %s', (cipher, short) => {
    const tA = `e2e-a${short}-${run}`;
    const tB = `e2e-b${short}-${run}`;
    const tk: Record<string, string> = {};
    const iv = cipher === 'sm4' ? 16 : 12;
    const tag = cipher === 'sm4' ? 32 : 16;

    beforeAll(async () => {
      const admin = ['credential:admin', 'credential:use'];
      tk.adminA = await issuer.token({ sub: 'u-admin-a', tid: tA, ptp: 'user', scp: admin });
      tk.adminB = await issuer.token({ sub: 'u-admin-b', tid: tB, ptp: 'user', scp: admin });
      tk.agentA = await issuer.token({ sub: 'agent-a', tid: tA, ptp: 'agent', act: 'u-1', scp: ['credential:use', 'credential:read', 'credential:admin'] });
      for (const token of [tk.adminA, tk.adminB]) {
        const ring = await call(PORT, 'POST', '/v1/keys', { token, body: { provider: 'local', cipher } });
        expect(ring.status).toBe(201);
        expect(ring.json).toMatchObject({ cipher, keys: [{ version: 1, provider: 'local', origin: 'generated', state: 'active' }] });
      }
    });

    it('runs the lifecycle; a value reaches only the sandbox service over mTLS, once, recorded as a read', async () => {
      const first = marker();
      const s = await create(tk.adminA, 'gerrit-http', first);
      const got = await call(PORT, 'GET', `/v1/secrets/${s.id}`, { token: tk.agentA });
      expect(got.status).toBe(200);
      expect(got.headers.etag).toBe('"1"');
      const second = marker();
      const rotated = await call(PORT, 'POST', `/v1/secrets/${s.id}/rotate`, { token: tk.adminA, body: { value: second }, headers: { 'if-match': '"1"' } });
      expect(rotated.status).toBe(200);
      expect(rotated.json.version).toBe(2);
      const stale = await call(PORT, 'POST', `/v1/secrets/${s.id}/rotate`, { token: tk.adminA, body: { value: 'x' }, headers: { 'if-match': '"1"' } });
      expect(stale.status).toBe(409);
      // Both versions stored with the tenant's cipher (sm4: iv 16, tag 32; AES-GCM: 12, 16).
      expect(await storedVersions(tA, s.id)).toEqual([
        { version: 1, cipher, iv, tag },
        { version: 2, cipher, iv, tag },
      ]);

      const lease = await grant(tk.agentA, s.id);
      expect(lease.status).toBe(201);
      expect(lease.json).toEqual({ leaseId: expect.any(String), token: expect.stringMatching(/^pl_/), secretId: s.id, sessionId: 'sbx-1', tool: 'gerrit', uses: 1, expiresAt: expect.any(String) });
      const body = { token: lease.json.token, tenantId: tA, sessionId: 'sbx-1', tool: 'gerrit' };
      // Not to the agent (no client certificate), not to another service.
      const asAgent = await call(PORT, 'POST', '/internal/v1/leases/redeem', { token: tk.agentA, body });
      expect(asAgent.status).toBe(401);
      const { cert, key } = llmRouter.tlsOptions();
      expect((await redeem(body, { cert: cert as string, key: key as string })).status).toBe(403);
      const wrongSession = await redeem({ ...body, sessionId: 'sbx-2' });
      expect(wrongSession.status).toBe(404);
      const redeemed = await redeem(body);
      expect(redeemed.status).toBe(200);
      expect(redeemed.json).toEqual({ leaseId: lease.json.leaseId, secretId: s.id, version: 2, value: second });
      const reuse = await redeem(body);
      expect(reuse.status).toBe(409);
      expect(reuse.json.error.message).toBe('lease already used');

      const short = await grant(tk.agentA, s.id, { ttlSeconds: 1 });
      await new Promise((r) => setTimeout(r, 1100));
      const expired = await redeem({ ...body, token: short.json.token });
      expect(expired.status).toBe(409);
      expect(expired.json.error.message).toBe('lease expired');

      const history = await call(PORT, 'GET', `/v1/secrets/${s.id}/history`, { token: tk.adminA });
      expect(history.json.items.map((e: { type: string }) => e.type)).toEqual(['credential.secret.created', 'credential.secret.rotated']);
      expect(history.json.items[0]).toMatchObject({ actor: { type: 'user', id: 'u-admin-a' }, data: { name: 'gerrit-http', scopes: ['tool:gerrit'], cipher } });

      const revoked = await call(PORT, 'POST', `/v1/secrets/${s.id}/revoke`, { token: tk.adminA, body: { reason: 'e2e' } });
      expect(revoked.status).toBe(200);
      expect((await grant(tk.agentA, s.id)).status).toBe(409);

      // Crypto-shredding: data key and ciphertext gone, the KEK rotated (same cipher) and the previous one destroyed.
      const doomed = await create(tk.adminA, 'doomed', marker());
      const shred = await call(PORT, 'DELETE', `/v1/secrets/${doomed.id}`, { token: tk.adminA });
      expect(shred.status).toBe(200);
      expect(shred.json).toMatchObject({ secretId: doomed.id, versionsDestroyed: [1], previousKeyDestroyed: true });
      expect((await call(PORT, 'GET', `/v1/secrets/${doomed.id}`, { token: tk.adminA })).status).toBe(404);
      expect(await storedVersions(tA, doomed.id)).toEqual([]);
      const ring = await call(PORT, 'GET', '/v1/keys', { token: tk.adminA });
      expect(ring.json).toMatchObject({ cipher, currentVersion: 2, keys: expect.arrayContaining([expect.objectContaining({ version: 1, state: 'retired' }), expect.objectContaining({ version: 2, state: 'active' })]) });
      // The tenant keeps working under the new KEK, with its cipher.
      const after = await create(tk.adminA, 'after-shred', marker());
      expect(await storedVersions(tA, after.id)).toEqual([{ version: 1, cipher, iv, tag }]);
    });

    it('BYOK over HTTP: a tenant with imported material, revoked, reads nothing more', async () => {
      // SM4 KEKs cannot live on SoftHSM2 (refused at configuration, below), so sm4 imports into the local provider.
      const provider = cipher === 'sm4' ? 'local' : 'pkcs11';
      const t = `e2e-byok${short}-${run}`;
      const token = await issuer.token({ sub: 'u-byok', tid: t, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
      const ring = await call(PORT, 'POST', '/v1/keys', { token, body: { provider, cipher, byok: { material: randomBytes(32).toString('base64') } } });
      expect(ring.status).toBe(201);
      expect(ring.json).toMatchObject({ cipher, keys: [{ version: 1, provider, origin: 'imported', state: 'active' }] });
      const value = marker();
      const s = await create(token, 'byok', value);
      expect(await storedVersions(t, s.id)).toEqual([{ version: 1, cipher, iv, tag }]);
      const lease = await grant(token, s.id, { uses: 2 });
      const body = { token: lease.json.token, tenantId: t, sessionId: 'sbx-1', tool: 'gerrit' };
      const first = await redeem(body);
      expect(first.status).toBe(200);
      expect(first.json).toMatchObject({ secretId: s.id, version: 1, value });
      expect((await call(PORT, 'POST', '/v1/keys/versions/1/revoke', { token, body: { reason: 'customer revoked' } })).status).toBe(200);
      const after = await redeem(body);
      expect(after.status).toBe(409);
      expect(after.json).not.toHaveProperty('value');
      // A lease granted after the revocation does not redeem either.
      const later = await grant(token, s.id);
      const laterRedeemed = await redeem({ ...body, token: later.json.token });
      expect(laterRedeemed.status).toBe(409);
      expect(laterRedeemed.json).not.toHaveProperty('value');
    });

    it('probes every endpoint with another tenant’s ids: 404 and nothing of theirs', async () => {
      const secretName = `a-only-${run}`;
      const a = await create(tk.adminA, secretName, marker());
      const lease = await grant(tk.agentA, a.id);
      await create(tk.adminB, 'b-own', 'b-value');
      const probes: Array<[string, string, unknown?]> = [
        ['GET', `/v1/secrets/${a.id}`],
        ['GET', `/v1/secrets/${a.id}/history`],
        ['POST', `/v1/secrets/${a.id}/rotate`, { value: 'hijack' }],
        ['POST', `/v1/secrets/${a.id}/revoke`, { reason: 'hijack' }],
        ['DELETE', `/v1/secrets/${a.id}`],
        ['POST', '/v1/leases', { secretId: a.id, sessionId: 'sbx-1', tool: 'gerrit' }],
      ];
      for (const [method, path, body] of probes) {
        const r = await call(PORT, method, path, { token: tk.adminB, body });
        expect({ method, path, status: r.status }).toEqual({ method, path, status: 404 });
        expect(r.body).not.toContain(secretName);
      }
      const asB = await redeem({ token: lease.json.token, tenantId: tB, sessionId: 'sbx-1', tool: 'gerrit' });
      expect(asB.status).toBe(404);
      const list = await call(PORT, 'GET', '/v1/secrets', { token: tk.adminB });
      expect(list.json.items.map((i: { name: string }) => i.name)).toEqual(['b-own']);
      const ringB = await call(PORT, 'GET', '/v1/keys', { token: tk.adminB });
      expect(ringB.json.keys).toHaveLength(1);
      // A's secret is untouched and its lease still redeems for A.
      expect((await call(PORT, 'GET', `/v1/secrets/${a.id}`, { token: tk.adminA })).json).toMatchObject({ state: 'active', version: 1 });
      expect((await redeem({ token: lease.json.token, tenantId: tA, sessionId: 'sbx-1', tool: 'gerrit' })).status).toBe(200);
    });

    it('keeps releasing values with their read record while NATS (and so the audit pipeline) is down; the outbox delivers later', async () => {
      const s = await create(tk.adminA, `outage-${run}`, marker());
      await natsProxy.cut();
      try {
        const lease = await grant(tk.agentA, s.id);
        const r = await redeem({ token: lease.json.token, tenantId: tA, sessionId: 'sbx-1', tool: 'gerrit' });
        expect(r.status).toBe(200);
        const pg = await ownerClient();
        try {
          const rows = await pg.query(`SELECT 1 FROM palisade.events WHERE event_type = 'credential.secret.read' AND envelope->'data'->>'leaseId' = $1`, [lease.json.leaseId]);
          expect(rows.rowCount).toBe(1);
        } finally {
          await pg.end();
        }
        await natsProxy.restore();
        const seen = await eventually(async () => (await jetStreamText()).includes(lease.json.leaseId) || undefined, 45000, 500);
        expect(seen).toBe(true);
      } finally {
        if (!natsProxy.listening) await natsProxy.restore();
      }
    }, 90000);
  });

  it('a tenant switches from AES to sm4: old AES secrets still read, new ones are sm4, a rotation re-encrypts into sm4 and the AES version stays readable', async () => {
    const t = `e2e-switch-${run}`;
    const token = await issuer.token({ sub: 'u-switch', tid: t, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
    expect((await call(PORT, 'POST', '/v1/keys', { token, body: { provider: 'local' } })).json).toMatchObject({ cipher: 'aes-256-gcm' });
    const oldValue = marker();
    const kept = marker();
    const rotatedAway = await create(token, 'rotated', oldValue);
    const untouched = await create(token, 'untouched', kept);
    const byRotator = await create(token, 'by-rotator', marker());
    const sm4 = await call(PORT, 'PUT', '/v1/keys/cipher', { token, body: { cipher: 'sm4' } });
    expect(sm4.status).toBe(200);
    expect(sm4.json).toMatchObject({ cipher: 'sm4' });

    const fresh = marker();
    const created = await create(token, 'after-switch', fresh);
    expect(await storedVersions(t, created.id)).toEqual([{ version: 1, cipher: 'sm4', iv: 16, tag: 32 }]);

    const newValue = marker();
    const rotated = await call(PORT, 'POST', `/v1/secrets/${rotatedAway.id}/rotate`, { token, body: { value: newValue }, headers: { 'if-match': '"1"' } });
    expect(rotated.status).toBe(200);
    // The new version is sm4; the AES version overlaps, untouched.
    expect(await storedVersions(t, rotatedAway.id)).toEqual([
      { version: 1, cipher: 'aes-256-gcm', iv: 12, tag: 16 },
      { version: 2, cipher: 'sm4', iv: 16, tag: 32 },
    ]);
    // A rotator reads the current (AES) value to rotate it, and writes sm4.
    expect((await call(PORT, 'POST', `/v1/secrets/${byRotator.id}/rotate`, { token, body: { rotator: 'random' } })).status).toBe(200);
    expect((await storedVersions(t, byRotator.id)).map((v) => v.cipher)).toEqual(['aes-256-gcm', 'sm4']);

    const leased = async (secretId: string) => {
      const lease = await grant(token, secretId);
      expect(lease.status).toBe(201);
      const r = await redeem({ token: lease.json.token, tenantId: t, sessionId: 'sbx-1', tool: 'gerrit' });
      expect(r.status).toBe(200);
      return r.json as { version: number; value: string };
    };
    expect(await leased(rotatedAway.id)).toMatchObject({ version: 2, value: newValue });
    expect(await leased(untouched.id)).toMatchObject({ version: 1, value: kept });
    expect(await leased(created.id)).toMatchObject({ version: 1, value: fresh });
    // The overlapping AES version 1 still opens with the vault's own key store (no endpoint reads a previous version).
    expect(await openStoredVersion(t, rotatedAway.id, 1)).toBe(oldValue);
  });

  it('leaks no marker value or lease token to the logs, the event store, JetStream or the audit topic', async () => {
    expect(markers.length).toBeGreaterThanOrEqual(5);
    // Let the outbox deliver everything first.
    await eventually(async () => (await jetStreamText()).includes('credential.keyring.key_revoked') || undefined, 30000, 500);
    const haystacks: Record<string, string> = {};
    haystacks.log = readFileSync(join(LOG_DIR, 'credential.log'), 'utf8');
    expect(haystacks.log).toContain('vault ready');
    const pg = await ownerClient();
    try {
      const rows = await pg.query(`SELECT envelope::text AS e FROM palisade.events WHERE tenant_id LIKE $1`, [`e2e-%-${run}`]);
      haystacks.eventStore = rows.rows.map((r: { e: string }) => r.e).join('\n');
    } finally {
      await pg.end();
    }
    expect(haystacks.eventStore).toContain('credential.secret.read');
    haystacks.jetStream = await jetStreamText();
    expect(haystacks.jetStream).toContain('credential.secret.read');
    haystacks.kafka = await auditTopicText();
    for (const [where, text] of Object.entries(haystacks)) {
      for (const m of markers) expect({ where, leaked: text.includes(m) }).toEqual({ where, leaked: false });
      for (const t of leaseTokens) expect({ where, leakedToken: text.includes(t) }).toEqual({ where, leakedToken: false });
      expect({ where, leakedAwsSecret: text.includes('not-a-real-secret-e2e') }).toEqual({ where, leakedAwsSecret: false });
    }
  });

  /** The stored rows of a secret's versions: cipher and the sizes of IV and tag. */
  async function storedVersions(tenantId: string, secretId: string): Promise<Array<{ version: number; cipher: string; iv: number; tag: number }>> {
    const pg = await ownerClient();
    try {
      const rows = await pg.query(
        `SELECT version, cipher, length(iv) AS iv, length(tag) AS tag FROM palisade.secret_versions WHERE tenant_id = $1 AND secret_id = $2 ORDER BY version`,
        [tenantId, secretId],
      );
      return rows.rows;
    } finally {
      await pg.end();
    }
  }

  /** Opens a stored version outside the service: its row, its KEK from the service's local key store, the bound context. */
  async function openStoredVersion(tenantId: string, secretId: string, version: number): Promise<string> {
    const pg = await ownerClient();
    try {
      const { rows } = await pg.query(
        `SELECT v.cipher, v.wrapped_dek, v.iv, v.tag, v.ciphertext, k.key_ref FROM palisade.secret_versions v
           JOIN palisade.kek_versions k ON k.tenant_id = v.tenant_id AND k.version = v.kek_version
          WHERE v.tenant_id = $1 AND v.secret_id = $2 AND v.version = $3`,
        [tenantId, secretId, version],
      );
      expect(rows).toHaveLength(1);
      const row = rows[0];
      const binding = { tenantId, secretId, version };
      const provider = new LocalKeyProvider({ masterKeyFile: join(keyDir, 'master.key'), keystoreDir: join(keyDir, 'keys') });
      const dek = await provider.unwrap(row.key_ref, row.wrapped_dek, bindingContext(binding, row.cipher));
      return open({ cipher: row.cipher, iv: row.iv, tag: row.tag, ciphertext: row.ciphertext }, dek, binding).toString('utf8');
    } finally {
      await pg.end();
    }
  }

  async function ownerClient(): Promise<Client> {
    const c = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: 'palisade_credential', user: 'palisade_credential_owner' });
    await c.connect();
    return c;
  }

  /** Every credential event on PALISADE_EVENTS since the test started, as text. */
  async function jetStreamText(): Promise<string> {
    const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: 'e2e-credential-leaks' });
    try {
      const jsm = await nc.jetstreamManager();
      const name = `e2e_credential_${randomBytes(4).toString('hex')}`;
      await jsm.consumers.add(EVENTS_STREAM, {
        name,
        filter_subject: 'palisade.events.credential.>',
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: startedAt.toISOString(),
        ack_policy: AckPolicy.None,
        inactive_threshold: 30 * 1e9,
      });
      const consumer = await nc.jetstream().consumers.get(EVENTS_STREAM, name);
      const texts: string[] = [];
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 500, expires: 1000 });
        let n = 0;
        for await (const m of batch) {
          texts.push(m.string());
          n++;
        }
        if (n === 0) break;
      }
      await jsm.consumers.delete(EVENTS_STREAM, name).catch(() => undefined);
      return texts.join('\n');
    } finally {
      await nc.drain();
      identity.stop();
    }
  }

  /** The audit topic's records since the test started, when the audit service has created it; '' otherwise. */
  async function auditTopicText(): Promise<string> {
    const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    const kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity, clientId: 'e2e-credential-leaks', logLevel: 'error' });
    const admin = kafka.admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(AUDIT_TOPIC)) return '';
      const from = await admin.fetchTopicOffsetsByTimestamp(AUDIT_TOPIC, startedAt.getTime());
      const until = await admin.fetchTopicOffsets(AUDIT_TOPIC);
      const consumer = kafka.consumer({ groupId: `e2e-credential-${randomBytes(4).toString('hex')}` });
      const texts: string[] = [];
      const pending = new Map(until.map((p) => [p.partition, Number(p.high)]));
      for (const p of from) if (Number(p.offset) >= (pending.get(p.partition) ?? 0) || Number(p.offset) < 0) pending.delete(p.partition);
      if (pending.size === 0) return '';
      await consumer.connect();
      await consumer.subscribe({ topic: AUDIT_TOPIC });
      const done = new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ partition, message }) => {
            texts.push(message.value?.toString('utf8') ?? '');
            if (Number(message.offset) + 1 >= (pending.get(partition) ?? 0)) pending.delete(partition);
            if (pending.size === 0) resolve();
          },
        });
      });
      for (const p of from) consumer.seek({ topic: AUDIT_TOPIC, partition: p.partition, offset: p.offset });
      await Promise.race([done, new Promise((r) => setTimeout(r, 15000))]);
      await consumer.disconnect();
      return texts.join('\n');
    } finally {
      await admin.disconnect();
      identity.stop();
    }
  }
});
