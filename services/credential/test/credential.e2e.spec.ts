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

// The built credential service as a process on 14103 (port offset 7000), over its real
// HTTPS API, with real token verification (a JWKS the test owns), SoftHSM2, a local KMS
// endpoint, and NATS reached through a proxy the test can cut.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 7103 + 7000;
const LOG_DIR = join(infra('PALISADE_HOME'), 'logs', 'e2e-credential');
const AUDIT_TOPIC = 'palisade.audit.v1';

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
  const tenantB = `e2e-b-${run}`;
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
    tokens.adminB = await issuer.token({ sub: 'u-admin-b', tid: tenantB, ptp: 'user', scp: admin });
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

  it('runs the lifecycle; a value reaches only the sandbox service over mTLS, once, recorded as a read', async () => {
    const first = marker();
    const s = await create(tokens.adminA, 'gerrit-http', first);
    const got = await call(PORT, 'GET', `/v1/secrets/${s.id}`, { token: tokens.agentA });
    expect(got.status).toBe(200);
    expect(got.headers.etag).toBe('"1"');
    const second = marker();
    const rotated = await call(PORT, 'POST', `/v1/secrets/${s.id}/rotate`, { token: tokens.adminA, body: { value: second }, headers: { 'if-match': '"1"' } });
    expect(rotated.status).toBe(200);
    expect(rotated.json.version).toBe(2);
    const stale = await call(PORT, 'POST', `/v1/secrets/${s.id}/rotate`, { token: tokens.adminA, body: { value: 'x' }, headers: { 'if-match': '"1"' } });
    expect(stale.status).toBe(409);

    const lease = await grant(tokens.agentA, s.id);
    expect(lease.status).toBe(201);
    expect(lease.json).toEqual({ leaseId: expect.any(String), token: expect.stringMatching(/^pl_/), secretId: s.id, sessionId: 'sbx-1', tool: 'gerrit', uses: 1, expiresAt: expect.any(String) });
    const body = { token: lease.json.token, tenantId: tenantA, sessionId: 'sbx-1', tool: 'gerrit' };
    // Not to the agent (no client certificate), not to another service.
    const asAgent = await call(PORT, 'POST', '/internal/v1/leases/redeem', { token: tokens.agentA, body });
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

    const short = await grant(tokens.agentA, s.id, { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 1100));
    const expired = await redeem({ ...body, token: short.json.token });
    expect(expired.status).toBe(409);
    expect(expired.json.error.message).toBe('lease expired');

    const history = await call(PORT, 'GET', `/v1/secrets/${s.id}/history`, { token: tokens.adminA });
    expect(history.json.items.map((e: { type: string }) => e.type)).toEqual(['credential.secret.created', 'credential.secret.rotated']);
    expect(history.json.items[0]).toMatchObject({ actor: { type: 'user', id: 'u-admin-a' }, data: { name: 'gerrit-http', scopes: ['tool:gerrit'] } });

    const revoked = await call(PORT, 'POST', `/v1/secrets/${s.id}/revoke`, { token: tokens.adminA, body: { reason: 'e2e' } });
    expect(revoked.status).toBe(200);
    expect((await grant(tokens.agentA, s.id)).status).toBe(409);

    const doomed = await create(tokens.adminA, 'doomed', marker());
    const shred = await call(PORT, 'DELETE', `/v1/secrets/${doomed.id}`, { token: tokens.adminA });
    expect(shred.status).toBe(200);
    expect(shred.json).toMatchObject({ secretId: doomed.id, versionsDestroyed: [1], previousKeyDestroyed: true });
    expect((await call(PORT, 'GET', `/v1/secrets/${doomed.id}`, { token: tokens.adminA })).status).toBe(404);

    const ring = await call(PORT, 'GET', '/v1/keys', { token: tokens.adminA });
    expect(ring.json).toMatchObject({ cipher: 'aes-256-gcm', keys: expect.arrayContaining([expect.objectContaining({ state: 'retired' }), expect.objectContaining({ state: 'active' })]) });
    const sm4 = await call(PORT, 'PUT', '/v1/keys/cipher', { token: tokens.adminA, body: { cipher: 'sm4' } });
    expect(sm4.status).toBe(200);
    expect(sm4.json).toMatchObject({ cipher: 'sm4' });
    // The tenant's AES versions still read; new ones are sm4.
    const afterSwitch = await create(tokens.adminA, 'after-switch', marker());
    expect((await call(PORT, 'GET', `/v1/secrets/${afterSwitch.id}`, { token: tokens.adminA })).status).toBe(200);
  });

  it('an sm4 tenant over HTTP: provisioned with cipher sm4, stores and leases a secret; on SoftHSM2 sm4 is a 400 naming the mechanism', async () => {
    const t = `e2e-sm4-${run}`;
    const token = await issuer.token({ sub: 'u-sm4', tid: t, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
    const ring = await call(PORT, 'POST', '/v1/keys', { token, body: { provider: 'local', cipher: 'sm4' } });
    expect(ring.status).toBe(201);
    expect(ring.json).toMatchObject({ cipher: 'sm4', keys: [{ version: 1, provider: 'local', origin: 'generated', state: 'active' }] });
    const value = marker();
    const s = await create(token, 'sm4-secret', value);
    const lease = await grant(token, s.id);
    const redeemed = await redeem({ token: lease.json.token, tenantId: t, sessionId: 'sbx-1', tool: 'gerrit' });
    expect(redeemed.status).toBe(200);
    expect(redeemed.json).toMatchObject({ secretId: s.id, version: 1, value });

    const hsm = `e2e-sm4-hsm-${run}`;
    const hsmToken = await issuer.token({ sub: 'u-sm4', tid: hsm, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
    const refused = await call(PORT, 'POST', '/v1/keys', { token: hsmToken, body: { provider: 'pkcs11', cipher: 'sm4' } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.message).toContain('cannot hold SM4 key-encryption keys');
    expect(refused.json.error.message).toContain('CKM_AES_GCM');
  });

  it('BYOK over HTTP: a tenant on SoftHSM2 with imported material, revoked, reads nothing more', async () => {
    const t = `e2e-byok-${run}`;
    const token = await issuer.token({ sub: 'u-byok', tid: t, ptp: 'user', scp: ['credential:admin', 'credential:use'] });
    const ring = await call(PORT, 'POST', '/v1/keys', { token, body: { provider: 'pkcs11', byok: { material: randomBytes(32).toString('base64') } } });
    expect(ring.status).toBe(201);
    expect(ring.json.keys).toEqual([{ version: 1, provider: 'pkcs11', origin: 'imported', state: 'active' }]);
    const s = await create(token, 'byok', marker());
    const lease = await grant(token, s.id, { uses: 2 });
    const body = { token: lease.json.token, tenantId: t, sessionId: 'sbx-1', tool: 'gerrit' };
    expect((await redeem(body)).status).toBe(200);
    expect((await call(PORT, 'POST', '/v1/keys/versions/1/revoke', { token, body: { reason: 'customer revoked' } })).status).toBe(200);
    const after = await redeem(body);
    expect(after.status).toBe(409);
    expect(after.json).not.toHaveProperty('value');
  });

  it('probes every endpoint with another tenant’s ids: 404 and nothing of theirs', async () => {
    const secretName = `a-only-${run}`;
    const a = await create(tokens.adminA, secretName, marker());
    const lease = await grant(tokens.agentA, a.id);
    await create(tokens.adminB, 'b-own', 'b-value');
    const probes: Array<[string, string, unknown?]> = [
      ['GET', `/v1/secrets/${a.id}`],
      ['GET', `/v1/secrets/${a.id}/history`],
      ['POST', `/v1/secrets/${a.id}/rotate`, { value: 'hijack' }],
      ['POST', `/v1/secrets/${a.id}/revoke`, { reason: 'hijack' }],
      ['DELETE', `/v1/secrets/${a.id}`],
      ['POST', '/v1/leases', { secretId: a.id, sessionId: 'sbx-1', tool: 'gerrit' }],
    ];
    for (const [method, path, body] of probes) {
      const r = await call(PORT, method, path, { token: tokens.adminB, body });
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 404 });
      expect(r.body).not.toContain(secretName);
    }
    const asB = await redeem({ token: lease.json.token, tenantId: tenantB, sessionId: 'sbx-1', tool: 'gerrit' });
    expect(asB.status).toBe(404);
    const list = await call(PORT, 'GET', '/v1/secrets', { token: tokens.adminB });
    expect(list.json.items.map((i: { name: string }) => i.name)).toEqual(['b-own']);
    const ringB = await call(PORT, 'GET', '/v1/keys', { token: tokens.adminB });
    expect(ringB.json.keys).toHaveLength(1);
    // A's secret is untouched and its lease still redeems for A.
    expect((await call(PORT, 'GET', `/v1/secrets/${a.id}`, { token: tokens.adminA })).json).toMatchObject({ state: 'active', version: 1 });
    expect((await redeem({ token: lease.json.token, tenantId: tenantA, sessionId: 'sbx-1', tool: 'gerrit' })).status).toBe(200);
  });

  it('keeps releasing values with their read record while NATS (and so the audit pipeline) is down; the outbox delivers later', async () => {
    const s = await create(tokens.adminA, `outage-${run}`, marker());
    await natsProxy.cut();
    try {
      const lease = await grant(tokens.agentA, s.id);
      const r = await redeem({ token: lease.json.token, tenantId: tenantA, sessionId: 'sbx-1', tool: 'gerrit' });
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
