import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { AckPolicy, DeliverPolicy, type NatsConnection } from 'nats';
import { EVENTS_STREAM, SERVICE_NAMES, validateConsumed, type EventEnvelope, type ServiceName } from '@palisade/contracts';
import { connectNats } from '@palisade/nats';
import { ensureCa, issueCertificate, ServiceIdentity } from '@palisade/pki';
import { createTestSchema, eventually, httpsCaller, infra, type Reply, TEST_APP_ROLE, TEST_DATABASE, TEST_OWNER, type TestSchema } from '@palisade/testing';

// The seven built services, started as processes on ports 8101..8107 (offset 1000, so
// a running `npm start` is not disturbed), tested over their real HTTPS APIs.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../scripts/platform-runner.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { seedDemo } = require('../scripts/seed-demo.js');
const OFFSET = 1000;

/** HTTPS to one of the services (the one client of @palisade/testing); the body as text. */
function call(
  port: number,
  path: string,
  options: { method?: string; body?: string | Buffer; headers?: Record<string, string>; cert?: string; key?: string } = {},
): Promise<Reply> {
  return httpsCaller(port)(path, { method: options.method ?? 'GET', raw: options.body, headers: options.headers, cert: options.cert, key: options.key });
}

describe('the seven services', () => {
  const bootstrapDir = mkdtempSync(join(tmpdir(), 'palisade-e2e-bootstrap-'));
  const bootstrapTokenFile = join(bootstrapDir, 'bootstrap.token');
  let handles: Array<{ name: string; port: number; stop(): Promise<unknown> }> = [];
  let admin: { nc: NatsConnection; identity: ServiceIdentity; consumer: string };
  const schemas = new Map<ServiceName, TestSchema>();

  beforeAll(async () => {
    // Watch for lifecycle events from before the services start: a consumer of new
    // messages only, so a long stream (benchmarks, other tests) is not scanned.
    const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: 'e2e-lifecycle' });
    const consumer = `e2e_lifecycle_${process.pid}_${Date.now()}`;
    await (await nc.jetstreamManager()).consumers.add(EVENTS_STREAM, {
      name: consumer,
      filter_subject: 'palisade.events.*.lifecycle.started',
      deliver_policy: DeliverPolicy.New,
      ack_policy: AckPolicy.None,
      inactive_threshold: 300 * 1e9,
    });
    admin = { nc, identity, consumer };
    // Each service in a throw-away schema of the test database, so state that other runs
    // or checkouts left in the services' own databases (keys wrapped by their KEKs) plays no part.
    for (const service of SERVICE_NAMES) schemas.set(service, await createTestSchema('e2e'));
    // Wired as `npm start` wires them (scripts/start.js): auth keeps identity-provider
    // secrets in the vault, the vault asks the policy service; auth's bootstrap token of its own.
    const asNpmStart: Partial<Record<ServiceName, Record<string, string>>> = {
      auth: { AUTH_IDP_SECRETS: 'vault', AUTH_BOOTSTRAP_TOKEN_FILE: bootstrapTokenFile },
      credential: { CREDENTIAL_ACCESS_POLICY: 'policy' },
    };
    handles = runner.startServices({
      portOffset: OFFSET,
      env: { LOG_LEVEL: 'warn', PGDATABASE: TEST_DATABASE, PGUSER: TEST_APP_ROLE, PG_MIGRATION_USER: TEST_OWNER },
      envFor: (service: ServiceName) => ({ PG_SCHEMA: schemas.get(service)!.schema, ...asNpmStart[service] }),
      logDir: join(infra('PALISADE_HOME'), 'logs', 'e2e'),
    });
    await runner.waitReady(handles, { timeoutMs: 120000 });
  }, 150000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await admin.nc.drain();
    admin.identity.stop();
    for (const schema of schemas.values()) await schema.drop();
  });

  /** An operator's client certificate (kind admin), as `pki.js issue --kind admin` gives one. */
  const operator = () => admin.identity.tlsOptions() as { cert: string; key: string };

  it.each(SERVICE_NAMES)('%s is live and ready; each dependency checked, the details for operators only', async (service) => {
    const port = handles.find((h) => h.name === service)!.port;
    expect(JSON.parse((await call(port, '/health/live')).body)).toEqual({ status: 'ok' });
    const anonymous = await call(port, '/health/ready');
    expect(anonymous.status).toBe(200);
    expect(JSON.parse(anonymous.body)).toEqual({ status: 'ready' });
    const ready = await call(port, '/health/ready', operator());
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({
      status: 'ready',
      checks: { postgres: { ok: true }, nats: { ok: true }, outbox: { ok: true } },
    });
  });

  it.each(SERVICE_NAMES)('%s serves Prometheus metrics only to a client certificate of the platform', async (service) => {
    const port = handles.find((h) => h.name === service)!.port;
    const anonymous = await call(port, '/metrics');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).not.toContain('process_cpu_user_seconds_total');
    // A certificate of another CA is no operator either.
    const { ca } = await ensureCa(mkdtempSync(join(tmpdir(), 'palisade-e2e-other-ca-')));
    const stranger = await issueCertificate(ca, { kind: 'admin', name: 'platform' });
    expect((await call(port, '/metrics', { cert: stranger.certPem, key: stranger.keyPem })).status).toBe(401);
    const scraper = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'billing' });
    try {
      const byService = await call(port, '/metrics', scraper.tlsOptions() as { cert: string; key: string });
      expect(byService.status).toBe(200);
    } finally {
      scraper.stop();
    }
    const metrics = await call(port, '/metrics', operator());
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toContain(`process_cpu_user_seconds_total{service="${service}"}`);
    // by its labels, in any order (a service run as workers answers with every worker's, summed, its labels reordered)
    const counted = metrics.body.split('\n').filter((line) => line.startsWith('palisade_http_request_duration_seconds_count{'));
    expect(counted.some((line) => [`service="${service}"`, 'method="GET"', 'route="/health/live"', 'status="200"'].every((label) => line.includes(label)))).toBe(true);
    expect(metrics.body).toContain('palisade_outbox_published_events_total');
    const docs = await call(port, '/docs');
    expect(docs.status).toBe(200);
    expect(docs.body).toContain('swagger');
    const openapi = JSON.parse((await call(port, '/docs/openapi.json')).body);
    expect(openapi.openapi).toMatch(/^3\./);
    expect(openapi.info.title).toBe(`Palisade ${service}`);
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready', '/metrics']));
  });

  it.each(SERVICE_NAMES)('%s presents its SPIFFE identity over TLS 1.3 only', async (service) => {
    const port = handles.find((h) => h.name === service)!.port;
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const peer = await new Promise<{ cert: PeerCertificate; protocol: string | null }>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
        resolve({ cert: socket.getPeerCertificate(), protocol: socket.getProtocol() });
        socket.end();
      });
      socket.on('error', reject);
    });
    expect(peer.protocol).toBe('TLSv1.3');
    expect(peer.cert.subjectaltname).toContain(`URI:spiffe://palisade.local/service/${service}`);
    await expect(
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => resolve('connected'));
        socket.on('error', reject);
      }),
    ).rejects.toThrow();
  });

  it('admits only Palisade services, proven by client certificate, to service-to-service routes', async () => {
    const port = 7103 + OFFSET;
    const anonymous = await call(port, '/internal/whoami');
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body).error.code).toBe('unauthenticated');
    const policy = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'policy' });
    try {
      const { cert, key } = policy.tlsOptions();
      const asPolicy = await call(port, '/internal/whoami', { cert, key });
      expect(asPolicy.status).toBe(200);
      expect(JSON.parse(asPolicy.body)).toEqual({ caller: 'policy' });
    } finally {
      policy.stop();
    }
    const strangerCa = await ensureCa(mkdtempSync(join(tmpdir(), 'stranger-ca-')));
    const stranger = await issueCertificate(strangerCa.ca, { kind: 'service', name: 'policy' });
    const asStranger = await call(port, '/internal/whoami', { cert: stranger.certPem, key: stranger.keyPem });
    expect(asStranger.status).toBe(401);
  });

  it('refuses plain HTTP', async () => {
    const answer = await new Promise<string>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: 7101 + OFFSET }, () => socket.write('GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n'));
      let data = '';
      socket.on('data', (c) => (data += c.toString('latin1')));
      socket.on('close', () => resolve(data));
      socket.on('error', () => resolve(data));
      setTimeout(() => socket.destroy(), 2000);
    });
    expect(answer).not.toMatch(/HTTP\/1\.1 200/);
  });

  it('answers bad requests with coded 4xx errors, a request id and security headers', async () => {
    const port = 7102 + OFFSET;
    const missing = await call(port, '/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'not_found', requestId: expect.any(String) } });
    expect(missing.headers['strict-transport-security']).toContain('max-age=');
    expect(missing.headers['x-request-id']).toBe(JSON.parse(missing.body).error.requestId);

    const malformed = await call(port, '/v1/anything', { method: 'POST', body: '{"a":', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body).error).toMatchObject({ code: 'validation', message: 'request body is not valid JSON' });

    const huge = await call(port, '/v1/anything', {
      method: 'POST',
      body: JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(huge.status).toBe(413);
    expect(JSON.parse(huge.body).error.code).toBe('payload_too_large');

    const ready = await call(port, '/health/ready');
    expect(ready.status).toBe(200);
  });

  it('every service published <service>.lifecycle.started through its outbox to JetStream', async () => {
    const consumer = await admin.nc.jetstream().consumers.get(EVENTS_STREAM, admin.consumer);
    const seen = new Map<string, EventEnvelope>();
    await eventually(async () => {
      const batch = await consumer.fetch({ max_messages: 100, expires: 1000 });
      for await (const m of batch) {
        const result = validateConsumed(m.json());
        if (result.ok) seen.set(result.event.source, result.event);
      }
      return SERVICE_NAMES.every((s) => seen.has(s));
    }, 30000);
    for (const service of SERVICE_NAMES) {
      expect(seen.get(service)).toMatchObject({
        type: `${service}.lifecycle.started`,
        tenantId: 'system',
        actor: { type: 'service', id: service },
        data: { instanceId: expect.any(String), version: '0.1.0' },
      });
    }
  });

  it('seeds the demo tenant and its policy; the administrator then manages credentials as the policy service decides', async () => {
    const port = (service: ServiceName) => handles.find((h) => h.name === service)!.port;
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const printed: string[] = [];
    const seeded = await seedDemo({
      authUrl: `https://127.0.0.1:${port('auth')}`,
      policyUrl: `https://127.0.0.1:${port('policy')}`,
      ca,
      tokenFile: bootstrapTokenFile,
      markerFile: join(mkdtempSync(join(tmpdir(), 'palisade-e2e-demo-')), 'demo-tenant.json'),
      print: (line: string) => printed.push(line),
    });
    expect(seeded).toMatchObject({ created: true, tenantId: 'demo' });
    expect(printed.join('\n')).toContain('demo policy: role secrets-admin');
    const signIn = await call(port('auth'), '/v1/tenants/demo/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: seeded.username, password: seeded.password }),
    });
    expect(signIn.status).toBe(200);
    const token = JSON.parse(signIn.body).accessToken as string;
    const asAdmin = (method: string, path: string, body: unknown) =>
      call(port('credential'), path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // Wait until the policy service applied the seeded rules (asked directly, over mTLS as a
    // service), so the vault's decision cache never holds a deny from before them.
    const vault = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });
    try {
      const probe = { tenantId: 'demo', subject: { type: 'user', id: seeded.adminUserId }, action: 'credential.create', resource: { type: 'credential' } };
      await eventually(async () => {
        const r = await call(port('policy'), '/v1/authorize', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(probe),
          cert: vault.tlsOptions().cert as string,
          key: vault.tlsOptions().key as string,
        });
        return r.status === 200 && JSON.parse(r.body).decision === 'allow';
      }, 15000, 100);
    } finally {
      vault.stop();
    }
    // The token carries no credential scope: the policy service's rule allows it.
    const created = await asAdmin('POST', '/v1/secrets', { name: 'gerrit-token', value: 'demo-value-123', scopes: ['tool:gerrit'] });
    expect(created.status).toBe(201);
    const secretId = JSON.parse(created.body).id as string;
    expect(created.body).not.toContain('demo-value-123');
    // `use` is not the administrator's: a lease is refused, naming the policy.
    const lease = await asAdmin('POST', '/v1/leases', { secretId, sessionId: 'sbx-1', tool: 'gerrit' });
    expect(lease.status).toBe(403);
    expect(JSON.parse(lease.body).error.message).toMatch(/policy denies credential\.use/);

    // The tenant's auditor (a role the administrator gives) reads the tenant's audit log;
    // the administrator does not, by being one (separation of duties).
    const json = { 'content-type': 'application/json' };
    const auditorPassword = `Audit-${Date.now()}-Xy9!long`;
    const registered = await call(port('auth'), '/v1/users', {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${token}` },
      body: JSON.stringify({ username: 'auditor@demo.example', password: auditorPassword, roles: ['auditor'] }),
    });
    expect(registered.status).toBe(201);
    const auditorSignIn = await call(port('auth'), '/v1/tenants/demo/sign-in', { method: 'POST', headers: json, body: JSON.stringify({ username: 'auditor@demo.example', password: auditorPassword }) });
    const auditorToken = JSON.parse(auditorSignIn.body).accessToken as string;
    const since = encodeURIComponent(new Date(Date.now() - 5 * 60_000).toISOString());
    const readLog = (bearer: string) => call(port('audit'), `/v1/audit/events?type=credential.secret.created&from=${since}&limit=1000`, { headers: { authorization: `Bearer ${bearer}` } });
    expect((await readLog(token)).status).toBe(403);
    // The secret's creation reaches the audit log through the outbox, JetStream and Kafka.
    const page = await eventually(async () => {
      const r = await readLog(auditorToken);
      const body = r.status === 200 ? JSON.parse(r.body) : undefined;
      return body?.items?.some((e: { event: { data: { secretId?: string } } }) => e.event.data.secretId === secretId) ? body : undefined;
    }, 60000, 500);
    expect(page.items.every((e: { event: { tenantId: string } }) => e.event.tenantId === 'demo')).toBe(true);
    expect(JSON.stringify(page)).not.toContain('demo-value-123');
  });

  // last: it stops them. Nest's own shutdown hook used to re-raise SIGTERM once Nest had closed, killing the
  // process before the platform's close hooks (relay, consumers, audit batches, sandbox networks) had run.
  it('each service stops on SIGTERM only after closing its connections: exit code 0, not killed by the signal', async () => {
    const exits = await Promise.all(handles.map(async (h) => [h.name, await h.stop()]));
    expect(exits).toEqual(handles.map((h) => [h.name, { code: 0, signal: null }]));
  });
});

describe('certificate renewal', () => {
  it('serves a renewed certificate without a restart', async () => {
    const [h] = runner.startServices({
      services: ['billing'],
      portOffset: 3000,
      env: { CERT_LIFETIME_HOURS: '0.0015', LOG_LEVEL: 'warn' },
      logDir: join(infra('PALISADE_HOME'), 'logs', 'e2e-renewal'),
    });
    const serial = () =>
      new Promise<{ serial: string; validTo: string }>((resolve, reject) => {
        const socket = tlsConnect(
          { host: '127.0.0.1', port: 7107 + 3000, ca: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt')), servername: 'localhost' },
          () => {
            const cert = socket.getPeerCertificate();
            resolve({ serial: cert.serialNumber, validTo: cert.valid_to });
            socket.end();
          },
        );
        socket.on('error', reject);
      });
    try {
      await runner.waitReady([h], { timeoutMs: 60000 });
      const first = await serial();
      const second = await eventually(async () => {
        const now = await serial();
        return now.serial !== first.serial ? now : undefined;
      }, 15000, 250);
      expect(Date.parse(second.validTo)).toBeGreaterThan(Date.parse(first.validTo));
      expect(h.child.exitCode).toBeNull();
      expect((await call(7107 + 3000, '/health/live')).status).toBe(200);
    } finally {
      await h.stop();
    }
  });
});

describe('a service facing bad configuration or a missing dependency', () => {
  it('stops at once with a message naming the bad variable (no restart loop)', async () => {
    const [h] = runner.startServices({
      services: ['billing'],
      portOffset: 2000,
      env: { NATS_URL: 'nats://127.0.0.1:4222', PGPORT: 'not-a-port' },
      logDir: join(infra('PALISADE_HOME'), 'logs', 'e2e-badconfig'),
    });
    const { code } = await h.exited;
    expect(code).toBe(78);
    const log = readFileSync(join(infra('PALISADE_HOME'), 'logs', 'e2e-badconfig', 'billing.log'), 'utf8');
    expect(log).toMatch(/NATS_URL: must be a URL with scheme tls/);
    expect(log).toMatch(/PGPORT:/);
  });

  it('keeps serving liveness, reports the missing dependency as not ready, and retries', async () => {
    const [h] = runner.startServices({
      services: ['billing'],
      portOffset: 2000,
      env: { PGPORT: '1', LOG_LEVEL: 'error' },
      logDir: join(infra('PALISADE_HOME'), 'logs', 'e2e-nodeps'),
    });
    const operator = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    try {
      const port = 7107 + 2000;
      await eventually(async () => (await call(port, '/health/live')).status === 200, 30000, 100);
      expect(JSON.parse((await call(port, '/health/ready')).body)).toEqual({ status: 'not_ready' }); // no details for anonymous callers
      const ready = await eventually(async () => {
        const r = await call(port, '/health/ready', operator.tlsOptions() as { cert: string; key: string });
        const body = JSON.parse(r.body);
        return r.status === 503 && body.checks.postgres.reason ? body : undefined;
      }, 15000, 100);
      expect(ready.checks.postgres.ok).toBe(false);
      expect(ready.checks.postgres.reason).toMatch(/ECONNREFUSED|connect/);
      const api = await call(port, '/v1/anything');
      expect(api.status).toBe(503);
      expect(JSON.parse(api.body).error.code).toBe('unavailable');
      await new Promise((r) => setTimeout(r, 1000));
      const log = readFileSync(join(infra('PALISADE_HOME'), 'logs', 'e2e-nodeps', 'billing.log'), 'utf8');
      expect(log.match(/postgres unavailable; retrying/g)!.length).toBeGreaterThanOrEqual(2);
    } finally {
      operator.stop();
      await h.stop();
    }
  });
});
