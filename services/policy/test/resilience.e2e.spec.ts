import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { serviceDatabase } from '@palisade/contracts';
import { ServiceIdentity } from '@palisade/pki';
import { allowConnections, eventually, infra, terminateBackends } from '@palisade/testing';
import { call, TestIssuer, type Reply } from './helpers';
import { setTimeout as sleep } from 'node:timers/promises';

// The built policy service while its database connections are terminated (what a
// failover or a network blip does) and while its database refuses new ones for longer
// than EVENT_LAG_MAX_MS (here 1.5 s): it must never answer from a state it knows to be
// stale, say so in readiness, and recover by itself.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 12122;
const DATABASE = serviceDatabase('policy');
const tenant = `r-${randomBytes(4).toString('hex')}`;

describe('policy service when PostgreSQL connections drop', () => {
  let issuer: TestIssuer;
  let handle: { stop(): Promise<unknown> };
  let caller: ServiceIdentity;
  let mtls: { cert: string; key: string };
  let admin: string;

  const decide = () =>
    call(PORT, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, subject: { type: 'user', id: 'alice' }, action: 'read', resource: { type: 'report' } } });
  const ready = () => call(PORT, 'GET', '/health/ready', mtls);
  const publish = (action: string) =>
    call(PORT, 'PUT', '/v1/policies/main', { token: admin, body: { rules: [{ id: 'r', effect: 'allow', subject: 'role:reader', resource: 'report', action }] } });

  /** Decisions asked in a loop until stopped, as other services would. */
  function load() {
    const replies: Reply[] = [];
    let running = true;
    const loop = (async () => {
      while (running) replies.push(await decide().catch((e: Error) => ({ status: 0, headers: {}, body: e.message })));
    })();
    return {
      replies,
      stop: async () => {
        running = false;
        await loop;
        return replies;
      },
    };
  }

  beforeAll(async () => {
    issuer = await TestIssuer.create();
    [handle] = runner.startServices({
      services: ['policy'],
      env: { AUTH_JWKS: issuer.jwks, LOG_LEVEL: 'warn', HTTP_PORT: String(PORT), EVENT_LAG_MAX_MS: '1500' },
      logDir: join(infra('PALISADE_HOME'), 'logs', 'policy-resilience-e2e'),
    });
    await runner.waitReady([handle], { timeoutMs: 90000 });
    caller = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'credential' });
    mtls = caller.tlsOptions() as { cert: string; key: string };
    admin = await issuer.token({ tenantId: tenant, id: 'admin', scopes: ['policy:admin'] });
    expect((await call(PORT, 'PUT', '/v1/roles/reader', { token: admin, body: { inherits: [] } })).status).toBe(200);
    expect((await call(PORT, 'POST', '/v1/assignments', { token: admin, body: { assignments: [{ subject: 'user:alice', role: 'reader' }] } })).status).toBe(200);
    expect((await publish('read')).status).toBe(200);
    expect((await decide()).body.decision).toBe('allow');
  }, 120000);

  afterAll(async () => {
    await allowConnections(DATABASE, true);
    caller?.stop();
    await handle?.stop();
  });

  /** A write while connections are being replaced may be refused as unavailable (503), never fail (500). */
  async function despiteOutage(write: () => Promise<Reply>): Promise<Reply> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = await write();
      if (r.status !== 503 || Date.now() > deadline) return r;
      await sleep(100);
    }
  }

  it('recovers after every backend of its database is terminated while requests run: changes apply within 1 s, none skipped', async () => {
    const running = load();
    await sleep(200);
    expect(await terminateBackends(DATABASE)).toBeGreaterThan(0);
    // Changed at once, while the tail is reconnecting: stored, and applied by the tail
    // when it resumes from its position (not from "now", which would skip it).
    expect((await despiteOutage(() => publish('list'))).status).toBe(200);
    let started = Date.now();
    await eventually(async () => (await decide()).body.decision === 'deny', 1000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
    await sleep(200);
    await terminateBackends(DATABASE);
    await sleep(300);
    const replies = await running.stop();
    expect(replies.length).toBeGreaterThan(10);
    // Every decision was answered (200), allow or a denial; never a 5xx.
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);
    await eventually(async () => (await ready()).status === 200, 10000, 100);
    expect(await decide()).toMatchObject({ status: 200, body: { decision: 'deny', rule: 'default-deny' } });

    expect((await despiteOutage(() => publish('read'))).status).toBe(200);
    started = Date.now();
    await eventually(async () => (await decide()).body.decision === 'allow', 1000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('is not ready and denies while it cannot follow policy changes beyond the bound, and is ready again after', async () => {
    expect((await decide()).body.decision).toBe('allow');
    await allowConnections(DATABASE, false);
    try {
      await terminateBackends(DATABASE);
      const notReady = await eventually(
        async () => {
          const r = await ready();
          return r.status === 503 && r.body.checks?.['policy-tail']?.ok === false ? r : undefined;
        },
        8000,
        100,
      );
      expect(notReady.body.status).toBe('not_ready');
      expect(notReady.body.checks['policy-tail'].reason).toMatch(/last caught up \d+\.\d s ago \(bound 1\.5 s\)/);
      // The last state it read allowed this; it may be stale, so it does not allow.
      expect(await decide()).toMatchObject({ status: 200, body: { decision: 'deny', rule: 'policy-stale' } });
    } finally {
      await allowConnections(DATABASE, true);
    }
    await eventually(async () => (await ready()).status === 200, 15000, 100);
    expect((await decide()).body.decision).toBe('allow');
    expect((await publish('list')).status).toBe(200);
    const started = Date.now();
    await eventually(async () => (await decide()).body.decision === 'deny', 1000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
