import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ServiceIdentity } from '@palisade/pki';
import { eventually, infra } from '@palisade/testing';
import { call, TestIssuer, type Reply } from './helpers';
import { setTimeout as sleep } from 'node:timers/promises';

// The built policy service while PostgreSQL itself restarts (every connection of every
// service drops; for a while none can be made): decisions never fail (5xx), and once
// the database is back the service is ready again and a policy change applies within 1 s.
// It restarts the machine's shared PostgreSQL: the e2e tier runs one file at a time.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const PORT = 12132;
const tenant = `pr-${randomBytes(4).toString('hex')}`;

async function restartPostgres(): Promise<void> {
  const version = readdirSync('/etc/postgresql').sort().pop()!;
  await promisify(execFile)('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'restart'], { timeout: 60000 });
}

describe('policy service across a PostgreSQL restart', () => {
  let issuer: TestIssuer;
  let handle: { stop(): Promise<unknown> };
  let caller: ServiceIdentity;
  let mtls: { cert: string; key: string };
  let admin: string;

  const decide = () =>
    call(PORT, 'POST', '/v1/authorize', { ...mtls, body: { tenantId: tenant, subject: { type: 'user', id: 'alice' }, action: 'read', resource: { type: 'report' } } });
  const publish = (action: string) =>
    call(PORT, 'PUT', '/v1/policies/main', { token: admin, body: { rules: [{ id: 'r', effect: 'allow', subject: 'role:reader', resource: 'report', action }] } });

  beforeAll(async () => {
    issuer = await TestIssuer.create();
    [handle] = runner.startServices({
      services: ['policy'],
      env: { AUTH_JWKS: issuer.jwks, LOG_LEVEL: 'warn', HTTP_PORT: String(PORT) },
      logDir: join(infra('PALISADE_HOME'), 'logs', 'policy-restart-e2e'),
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
    caller?.stop();
    await handle?.stop();
  });

  it('answers every decision during the restart, is ready again after, and applies a change within 1 s', async () => {
    const replies: Reply[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        replies.push(await decide().catch((e: Error) => ({ status: 0, headers: {}, body: e.message })));
        await sleep(20);
      }
    })();
    await sleep(200);
    await restartPostgres();
    await eventually(async () => (await call(PORT, 'GET', '/health/ready', mtls)).status === 200, 30000, 100);
    running = false;
    await loop;
    expect(replies.filter((r) => r.status !== 200)).toEqual([]);

    expect((await publish('list')).status).toBe(200);
    const started = Date.now();
    await eventually(async () => (await decide()).body.decision === 'deny', 1000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await publish('read')).status).toBe(200);
    await eventually(async () => (await decide()).body.decision === 'allow', 1000, 20);
  }, 90000);
});
