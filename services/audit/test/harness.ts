import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { buildEvent, EVENTS_STREAM, newEventId, type EventEnvelope, type EventFactoryContext } from '@palisade/contracts';
import { keysOf, type AuditRecord, type Jwks, type VerificationResult } from '@palisade/audit-log';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import { connectNats, JetStreamEventPublisher, type NatsConnection } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { createTestSchema, eventually, httpsCaller, infra, type Reply, type TestSchema } from '@palisade/testing';
import { verifyTopic } from '../src/verify/verify-topic';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');

/** e2e port offset of the audit tests: audit on 11105 (and 11115 for a second instance). */
export const PORT_OFFSET = 4000;

export interface Instance {
  name: string;
  port: number;
  child: import('node:child_process').ChildProcess;
  exited: Promise<{ code: number | null; signal: string | null }>;
  stop(signal?: string): Promise<unknown>;
}

export type { Reply } from '@palisade/testing';

/** HTTPS to an audit instance (the one client of @palisade/testing); the body as text. */
export function call(port: number, path: string, options: { method?: string; body?: string; token?: string; cert?: string; key?: string } = {}): Promise<Reply> {
  return httpsCaller(port)(path, { method: options.method ?? 'GET', raw: options.body, token: options.token, cert: options.cert, key: options.key });
}

/**
 * GET a path as an operator does: with an admin client certificate of the platform
 * (anonymous callers get 401 from /metrics and only the status from /health/ready).
 */
export async function callAsOperator(port: number, path: string): Promise<Reply> {
  const operator = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
  try {
    const { cert, key } = operator.tlsOptions() as { cert: string; key: string };
    return await call(port, path, { cert, key });
  } finally {
    operator.stop();
  }
}

/** GET /metrics as an operator does. */
export async function metricsOf(port: number): Promise<string> {
  return (await callAsOperator(port, '/metrics')).body;
}

/**
 * One audit deployment under test: its own PostgreSQL schema, topics, durable, KEK and
 * token signing key; processes started from the build like in production.
 */
export class AuditUnderTest {
  readonly suffix = randomBytes(4).toString('hex');
  readonly topic = `palisade.audit.test-e2e-${this.suffix}`;
  readonly checkpointTopic = `palisade.audit.test-e2e-${this.suffix}-checkpoints`;
  readonly tenants = Array.from({ length: 8 }, (_, i) => `e2e-${this.suffix}-t${i}`);
  readonly published: EventEnvelope[] = [];
  db!: TestSchema;
  nc!: NatsConnection;
  kafka!: Kafka;
  admin!: Admin;
  private identity!: ServiceIdentity;
  private publisher!: JetStreamEventPublisher;
  private tokenKey!: CryptoKey;
  private jwk!: JWK;
  private readonly kekFile = join(mkdtempSync(join(tmpdir(), 'audit-kek-')), 'kek.key');
  readonly instances: Instance[] = [];

  constructor(
    readonly durable: string,
    readonly extraEnv: Record<string, string> = {},
    readonly portOffset = PORT_OFFSET,
  ) {}

  async setUp(): Promise<void> {
    this.db = await createTestSchema('audit');
    this.identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
    this.nc = await connectNats({ servers: infra('NATS_URL'), identity: this.identity, name: `audit-e2e-${this.suffix}` });
    this.publisher = new JetStreamEventPublisher(this.nc);
    await this.deleteDurable();
    this.kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity: this.identity, clientId: 'audit-e2e', logLevel: 'nothing' as never });
    this.admin = this.kafka.admin();
    await this.admin.connect();
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    this.tokenKey = privateKey;
    this.jwk = { ...(await exportJWK(publicKey)), kid: 'e2e', alg: 'EdDSA', use: 'sig' };
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.stop('SIGKILL')));
    await this.deleteDurable();
    await this.admin.deleteTopics({ topics: [this.topic, this.checkpointTopic] }).catch(() => undefined);
    await this.admin.disconnect();
    this.publisher.close();
    await this.nc.drain();
    this.identity.stop();
    await this.db.drop();
  }

  private async deleteDurable(): Promise<void> {
    const jsm = await this.nc.jetstreamManager();
    await jsm.consumers.delete(EVENTS_STREAM, `audit-${this.durable}`).catch(() => undefined);
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      LOG_LEVEL: 'info',
      PGDATABASE: 'palisade_test',
      PGUSER: 'palisade_test',
      PG_MIGRATION_USER: 'palisade_test_owner',
      PG_SCHEMA: this.db.schema,
      AUDIT_TOPIC: this.topic,
      AUDIT_CHECKPOINT_TOPIC: this.checkpointTopic,
      AUDIT_CONSUMER: this.durable,
      AUDIT_DELIVER_POLICY: 'new',
      AUDIT_ACK_WAIT_MS: '4000',
      AUDIT_KEK_FILE: this.kekFile,
      AUTH_JWKS: JSON.stringify({ keys: [this.jwk] }),
      DEPENDENCY_RETRY_MAX_MS: '1000',
      ...this.extraEnv,
      ...extra,
    };
  }

  /** Start one more audit process; the n-th listens on 11105 + 10 n. */
  start(extra: Record<string, string> = {}): Instance {
    const port = 7105 + this.portOffset + 10 * this.instances.length;
    const [instance] = runner.startServices({
      services: ['audit'],
      env: { ...this.env(extra), HTTP_PORT: String(port) },
      logDir: join(infra('PALISADE_HOME'), 'logs', 'audit-e2e'),
    }) as Instance[];
    this.instances.push(instance);
    return instance;
  }

  async ready(instance: Instance, timeoutMs = 60_000): Promise<void> {
    await runner.waitReady([instance], { timeoutMs });
  }

  token(scopes: string[], tenantId = this.tenants[0], sub = 'auditor-1'): Promise<string> {
    return new SignJWT({ tid: tenantId, ptp: 'user', scp: scopes })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'e2e', typ: 'at+jwt' })
      .setIssuer('palisade-auth')
      .setAudience('palisade:audit')
      .setSubject(sub)
      .setJti(newEventId())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.tokenKey);
  }

  /** Publish `count` events over the tenants (some with personal data), `perBatch` at a time. */
  async publish(count: number, options: { perBatch?: number; pauseMs?: number; withPersonal?: boolean; make?: (n: number) => EventEnvelope } = {}): Promise<EventEnvelope[]> {
    const ctx: EventFactoryContext = { source: 'billing', now: () => new Date(), newId: () => newEventId() };
    const events: EventEnvelope[] = [];
    const perBatch = options.perBatch ?? 100;
    for (let i = 0; i < count; i += perBatch) {
      const batch = Array.from({ length: Math.min(perBatch, count - i) }, (_, k) => {
        const n = this.published.length + events.length + k;
        if (options.make) return options.make(n);
        return buildEvent(ctx, {
          type: 'billing.usage.recorded',
          tenantId: this.tenants[n % this.tenants.length],
          actor: { type: 'agent', id: `agent-${n % 5}` },
          data: { n, tokens: n * 3 },
          ...(options.withPersonal && n % 3 === 0 ? { personal: { subjectId: `subject-${n % 4}`, data: { email: `user${n % 4}@example.com` } } } : {}),
        });
      });
      // Retried with the same events while NATS is away: JetStream keeps one copy per
      // event id (Nats-Msg-Id), so a batch partly stored before a failure is not doubled.
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await this.publisher.publish(batch);
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      events.push(...batch);
      if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
    this.published.push(...events);
    return events;
  }

  async jwks(port: number): Promise<Jwks> {
    const reply = await call(port, '/v1/audit/keys');
    if (reply.status !== 200) throw new Error(`GET /v1/audit/keys answered ${reply.status}: ${reply.body}`);
    return JSON.parse(reply.body) as Jwks;
  }

  /** Verify the whole topic; the records of this test's tenants (or those `keep` selects) come back too. */
  async verify(jwks: Jwks, keep: (r: AuditRecord) => boolean = (r) => this.tenants.includes(r.event.tenantId)): Promise<{ result: VerificationResult; ids: string[]; records: AuditRecord[] }> {
    const records: AuditRecord[] = [];
    const result = await verifyTopic({
      kafka: this.kafka,
      admin: this.admin,
      topic: this.topic,
      checkpointTopic: this.checkpointTopic,
      keys: keysOf(jwks),
      groupPrefix: 'palisade-audit-e2e',
      allowLaterStart: false,
      onRecord: (r) => {
        if (keep(r)) records.push(r);
      },
    });
    return { result, ids: records.map((r) => r.event.id), records };
  }

  /** Wait until the topic holds every published event (by high watermark count), then verify it. */
  async settleAndVerify(port: number, timeoutMs = 60_000) {
    const jwks = await this.jwks(port);
    return eventually(async () => {
      const v = await this.verify(jwks);
      return v.ids.length >= this.published.length ? v : undefined;
    }, timeoutMs, 1000);
  }
}

/** The ids published and the ids found, as sorted arrays, for an exact comparison. */
export function sameIds(published: readonly EventEnvelope[], found: readonly string[]): { published: string[]; found: string[] } {
  return { published: published.map((e) => e.id).sort(), found: [...found].sort() };
}

/** `palisade audit …` from the build, as an operator runs it (dev admin certificate from PALISADE_HOME). */
export function palisadeCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const repo = join(__dirname, '..', '..', '..');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repo, 'services', 'audit', 'bin', 'palisade.js'), ...args], { cwd: repo, env: { ...process.env, PALISADE_HOME: infra('PALISADE_HOME') } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
