import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { Client } from 'pg';
import { DeliverPolicy } from 'nats';
import { EVENTS_STREAM, SERVICE_NAMES, type ServiceName } from '@palisade/contracts';
import { kafkaClient } from '@palisade/kafka';
import { connectNats } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import {
  createTestSchema,
  eventually,
  httpsCaller,
  infra,
  terminateBackends,
  type CallOptions,
  type Reply,
  TEST_APP_ROLE,
  TEST_DATABASE,
  TEST_OWNER,
  type TestSchema,
} from '@palisade/testing';

// The whole platform through a database outage (issue 10, "Nothing frozen"): the seven built
// services take writes in a loop while every backend of their database is terminated, twice,
// and then PostgreSQL itself restarts. Afterwards every service is ready and answers, every
// acknowledged write is there, every event of the tenant is in JetStream exactly once and in the
// audit topic exactly once, and a policy change applies within 1 s.
// It restarts the machine's shared PostgreSQL: the e2e tier runs one file at a time.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../scripts/platform-runner.js');
const OFFSET = 3300;
const port = (service: ServiceName) => runner.SERVICES[service] + OFFSET;
const suffix = randomBytes(3).toString('hex');
const TENANT = `restart-${suffix}`;
const PASSWORD = `Restart-${randomBytes(9).toString('base64url')}-7x!`;
const AUDIT_TOPIC = `palisade.audit.e2erestart.${suffix}`;
const AUDIT_CONSUMER = 'e2erestart'; // deploy/local/nats-durables.test.txt
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a policy or
// billing instance of another suite on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = `restart${suffix}`;

jest.setTimeout(180_000);

type Handle = { name: string; port: number; stop(): Promise<unknown> };
type Outcome = { service: ServiceName; status: number; id?: string };

async function restartPostgres(): Promise<void> {
  const version = readdirSync('/etc/postgresql').sort().pop()!;
  await promisify(execFile)('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], { timeout: 60_000 });
}

describe('the platform across a PostgreSQL outage', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'palisade-restart-'));
  const schemas = new Map<ServiceName, TestSchema>();
  let handles: Handle[] = [];
  let operator: ServiceIdentity;
  let asker: ServiceIdentity;
  let admin = '';
  const startedAt = new Date();

  const call = (service: ServiceName, path: string, options: CallOptions = {}): Promise<Reply> =>
    httpsCaller(port(service))(path, { token: admin, timeoutMs: 30_000, ...options });
  const tls = (identity: ServiceIdentity) => identity.tlsOptions() as { cert: string; key: string };
  const decide = () =>
    call('policy', '/v1/authorize', {
      token: undefined,
      method: 'POST',
      ...tls(asker),
      body: { tenantId: TENANT, subject: { type: 'user', id: 'alice' }, action: 'read', resource: { type: 'report' } },
    });
  const publish = (action: string) =>
    call('policy', '/v1/policies/main', { method: 'PUT', body: { rules: [{ id: 'r', effect: 'allow', subject: 'role:reader', resource: 'report', action }] } });

  /** What a write answered: the id it wrote, or (refused) the start of the reply. */
  const outcome = (service: ServiceName, r: Reply, id: string | undefined): Outcome =>
    r.status === 200 || r.status === 201 ? { service, status: r.status, id } : { service, status: r.status, id: r.body.slice(0, 200) };
  /** One write per service that produces an event, each with an id of its own. */
  const writes: Record<Exclude<ServiceName, 'audit'>, (n: number) => Promise<Outcome>> = {
    auth: async (n) => {
      const r = await call('auth', '/v1/users', { method: 'POST', body: { username: `user-${n}`, password: PASSWORD, roles: ['member'] } });
      return outcome('auth', r, r.json?.userId);
    },
    policy: async (n) => {
      const r = await call('policy', `/v1/roles/role-${n}`, { method: 'PUT', body: { inherits: [] } });
      return outcome('policy', r, `role-${n}`);
    },
    credential: async (n) => {
      const r = await call('credential', '/v1/secrets', { method: 'POST', body: { name: `secret-${n}`, value: `value-${n}`, scopes: ['tool:restart'] } });
      return outcome('credential', r, r.json?.id);
    },
    billing: async (n) => {
      const r = await call('billing', `/v1/budgets/agent/agent-${n}`, { method: 'PUT', body: { limitMicros: '1000000', period: 'day', timeZone: 'UTC', hard: true } });
      return outcome('billing', r, `agent-${n}`);
    },
    'sandbox-orchestrator': async () => {
      const r = await call('sandbox-orchestrator', '/v1/sessions', { method: 'POST', body: {} });
      return outcome('sandbox-orchestrator', r, r.json?.sessionId ?? r.json?.id);
    },
    'llm-router': async (n) => {
      // a tenant holds at most 100 providers: the writes re-register a few, each with a new URL
      const r = await call('llm-router', `/v1/router/providers/provider-${n % 20}`, { method: 'PUT', body: { kind: 'openai', baseUrl: `https://provider-${n}.example`, compliance: 'external' } });
      return outcome('llm-router', r, `provider-${n}.example`);
    },
  };
  const writers = Object.keys(writes) as Array<keyof typeof writes>;

  beforeAll(async () => {
    operator = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    asker = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });
    await deleteAuditDurable(); // a run that crashed may have left it behind
    for (const service of SERVICE_NAMES) schemas.set(service, await createTestSchema('restart'));
    const tokenFile = join(workDir, 'bootstrap.token');
    writeFileSync(tokenFile, randomBytes(32).toString('base64url'), { mode: 0o600 });
    const envFor: Partial<Record<ServiceName, Record<string, string>>> = {
      auth: { AUTH_BOOTSTRAP_TOKEN_FILE: tokenFile },
      credential: { CREDENTIAL_ACCESS_POLICY: 'policy' },
      audit: {
        AUDIT_TOPIC,
        AUDIT_CHECKPOINT_TOPIC: `${AUDIT_TOPIC}.checkpoints`,
        AUDIT_CONSUMER,
        AUDIT_DELIVER_POLICY: 'new',
        AUDIT_KEK_FILE: join(workDir, 'audit-kek.key'),
      },
      'sandbox-orchestrator': { SANDBOX_INSTANCE: `rs${suffix}` },
    };
    handles = runner.startServices({
      portOffset: OFFSET,
      env: { LOG_LEVEL: 'warn', PGDATABASE: TEST_DATABASE, PGUSER: TEST_APP_ROLE, PG_MIGRATION_USER: TEST_OWNER },
      envFor: (service: ServiceName) => ({ PG_SCHEMA: schemas.get(service)!.schema, ...envFor[service] }),
      logDir: join(infra('PALISADE_HOME'), 'logs', 'e2e-restart'),
    });
    await runner.waitReady(handles, { timeoutMs: 120_000 });
    const bootstrap = await call('auth', '/v1/bootstrap', {
      token: undefined,
      method: 'POST',
      headers: { authorization: `Bootstrap ${readFileSync(tokenFile, 'utf8')}` },
      body: { tenantId: TENANT, tenantName: 'Restart', admin: { username: 'admin', password: PASSWORD } },
    });
    expect(bootstrap.status).toBe(201);
    const signIn = await call('auth', `/v1/tenants/${TENANT}/sign-in`, { token: undefined, method: 'POST', body: { username: 'admin', password: PASSWORD } });
    admin = signIn.json.accessToken;
    expect((await call('policy', '/v1/roles/reader', { method: 'PUT', body: { inherits: [] } })).status).toBe(200);
    expect((await call('policy', '/v1/roles/secrets-admin', { method: 'PUT', body: { inherits: [] } })).status).toBe(200);
    const assignments = [
      { subject: 'user:alice', role: 'reader' },
      { subject: `user:${decodeJwt(admin).sub}`, role: 'secrets-admin' },
    ];
    expect((await call('policy', '/v1/assignments', { method: 'POST', body: { assignments } })).status).toBe(200);
    const vault = ['create', 'read'].map((verb) => ({ id: `admin-${verb}s-secrets`, effect: 'allow', subject: 'role:secrets-admin', resource: 'credential', action: `credential.${verb}` }));
    expect((await call('policy', '/v1/policies/vault', { method: 'PUT', body: { rules: vault } })).status).toBe(200);
    expect((await publish('read')).status).toBe(200);
    await eventually(async () => (await decide()).json?.decision === 'allow', 10_000, 50);
    // every writer works before the outage (policy-decided writes may need a moment)
    for (const service of writers) {
      let last: Outcome | undefined;
      let attempt = 1_000_000;
      await eventually(async () => [200, 201].includes((last = await writes[service](attempt++)).status), 30_000, 250).catch((e: Error) => {
        throw new Error(`${service} refuses its write (${JSON.stringify(last)}): ${e.message}`);
      });
    }
  }, 240_000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
    await deleteAuditDurable().catch(() => undefined);
    const kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity: operator, clientId: 'e2e-restart', logLevel: 'nothing' as never });
    const kadmin = kafka.admin();
    await kadmin.connect();
    await kadmin.deleteTopics({ topics: [AUDIT_TOPIC, `${AUDIT_TOPIC}.checkpoints`] }).catch(() => undefined);
    await kadmin.disconnect();
    operator?.stop();
    asker?.stop();
    for (const schema of schemas.values()) await schema.drop().catch(() => undefined);
  }, 60_000);

  it('keeps every acknowledged write and every event once, answers no 5xx but 503, and applies policy changes within 1 s after', async () => {
    const outcomes: Outcome[] = [];
    let running = true;
    let n = 1;
    const loops = writers.map(async (service) => {
      while (running) {
        outcomes.push(await writes[service](n++).catch((e: Error) => ({ service, status: 0, id: e.message })));
        await sleep(25);
      }
    });
    await sleep(500);
    expect(await terminateBackends(TEST_DATABASE, 'palisade-')).toBeGreaterThan(0);
    await sleep(1000);
    await terminateBackends(TEST_DATABASE, 'palisade-');
    await sleep(1000);
    await restartPostgres();
    for (const h of handles) {
      await eventually(async () => (await call(h.name as ServiceName, '/health/ready', { token: undefined, ...tls(operator) })).status === 200, 60_000, 200);
    }
    await sleep(1000);
    running = false;
    await Promise.all(loops);

    // refused as unavailable while the database was away, never failed
    expect(outcomes.filter((o) => ![200, 201, 503].includes(o.status))).toEqual([]);
    const acknowledged = outcomes.filter((o) => o.status === 200 || o.status === 201);
    for (const service of writers) expect(acknowledged.filter((o) => o.service === service).length).toBeGreaterThan(0);

    // a policy change applies within 1 s of being accepted
    expect((await publish('list')).status).toBe(200);
    const changed = Date.now();
    await eventually(async () => (await decide()).json?.decision === 'deny', 1000, 20);
    expect(Date.now() - changed).toBeLessThan(1000);

    // every acknowledged write is in its service's event store, and every event of the tenant
    // reaches JetStream once and the audit topic once
    const stored = new Map<string, ServiceName>();
    const types = new Map<string, string>();
    const db = new Client({ host: infra('PGHOST'), port: Number(infra('PGPORT')), database: TEST_DATABASE, user: TEST_OWNER });
    await db.connect();
    try {
      for (const service of SERVICE_NAMES) {
        const { rows } = await db.query(`SELECT event_id, event_type, envelope::text AS envelope FROM ${schemas.get(service)!.schema}.events WHERE tenant_id = $1`, [TENANT]);
        for (const row of rows as Array<{ event_id: string; event_type: string }>) {
          stored.set(row.event_id, service);
          types.set(row.event_id, row.event_type);
        }
        const texts = (rows as Array<{ envelope: string }>).map((r) => r.envelope).join('\n');
        for (const o of acknowledged.filter((a) => a.service === service)) expect([service, texts.includes(o.id!)]).toEqual([service, true]);
      }
    } finally {
      await db.end();
    }
    for (const service of writers) expect([...stored.values()].filter((s) => s === service).length).toBeGreaterThan(0);

    // the relays publish after the commit: an event is looked for until it is there (or 30 s), then counted
    let inJetStream = new Map<string, number>();
    await eventually(async () => {
      inJetStream = await countInJetStream(new Set(stored.keys()));
      return [...stored.keys()].every((id) => inJetStream.has(id));
    }, 30_000, 500).catch(() => undefined);
    expect([...stored.keys()].filter((id) => inJetStream.get(id) !== 1).map((id) => `${types.get(id)} ${id}: ${inJetStream.get(id) ?? 0}`)).toEqual([]);

    let inTopic = new Map<string, number>();
    await eventually(async () => {
      inTopic = await countInAuditTopic();
      return [...stored.keys()].every((id) => inTopic.has(id));
    }, 60_000, 1000).catch(() => undefined);
    const missing = [...stored.entries()].filter(([id]) => !inTopic.has(id));
    expect({ missing: missing.length, of: stored.size, sample: missing.slice(0, 5).map(([id]) => `${types.get(id)} ${id}`) }).toEqual({ missing: 0, of: stored.size, sample: [] });
    expect([...stored.keys()].filter((id) => inTopic.get(id) !== 1)).toEqual([]);
    expect(inTopic.size).toBe(new Set(inTopic.keys()).size);
  });

  async function deleteAuditDurable(): Promise<void> {
    const nc = await connectNats({ servers: infra('NATS_URL'), identity: operator, name: 'e2e-restart' });
    try {
      await (await nc.jetstreamManager()).consumers.delete(EVENTS_STREAM, `audit-${AUDIT_CONSUMER}`).catch(() => undefined);
    } finally {
      await nc.drain();
    }
  }

  /** How many times each of `ids` is in the events stream since the test began. */
  async function countInJetStream(ids: Set<string>): Promise<Map<string, number>> {
    const nc = await connectNats({ servers: infra('NATS_URL'), identity: operator, name: 'e2e-restart-read' });
    const counts = new Map<string, number>();
    try {
      const consumer = await nc.jetstream().consumers.get(EVENTS_STREAM, {
        filterSubjects: 'palisade.events.>',
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: startedAt.toISOString(),
      });
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
        let seen = 0;
        for await (const m of batch) {
          seen++;
          const id = (m.json() as { id?: string }).id;
          if (id && ids.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
          if (m.info.pending === 0) break;
        }
        if (seen === 0 || (await consumer.info(true)).num_pending === 0) break;
      }
    } finally {
      await nc.drain();
    }
    return counts;
  }

  /** How many records of each event id the test's audit topic holds. */
  async function countInAuditTopic(): Promise<Map<string, number>> {
    const kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity: operator, clientId: 'e2e-restart-read', logLevel: 'nothing' as never });
    const kadmin = kafka.admin();
    await kadmin.connect();
    const ends = await kadmin.fetchTopicOffsets(AUDIT_TOPIC);
    await kadmin.disconnect();
    const counts = new Map<string, number>();
    const remaining = new Map(ends.filter((p) => Number(p.high) > 0).map((p) => [p.partition, Number(p.high)]));
    if (remaining.size === 0) return counts;
    const consumer = kafka.consumer({ groupId: `e2e-restart-${randomBytes(4).toString('hex')}` });
    await consumer.connect();
    await consumer.subscribe({ topic: AUDIT_TOPIC, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const record = JSON.parse(message.value!.toString('utf8')) as { event: { id: string } };
            counts.set(record.event.id, (counts.get(record.event.id) ?? 0) + 1);
            // the last offset of a transactional partition is its commit marker, never delivered
            if (Number(message.offset) + 2 >= (remaining.get(partition) ?? 0)) remaining.delete(partition);
            if (remaining.size === 0) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    return counts;
  }
});
