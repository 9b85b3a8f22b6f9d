import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { audienceOf } from '@palisade/auth-verifier';
import { httpsCaller, infra, TestTokenIssuer } from '@palisade/testing';
import { round, summarize } from './stats';

// The built sandbox-orchestrator (real crun runtime) and policy services at offset 9200,
// tokens of our own keys through AUTH_JWKS (as the e2e tests). Measured through the API:
//   start: POST /v1/sessions/:id/sandboxes → 201 (ready to exec: bundle, workspace tmpfs, event appended)
//   exec first byte: POST …/executions/stream of `echo x` → the first stdout line of the response
//   exec total: POST …/executions of `echo x` → the complete answer
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../scripts/platform-runner.js');

const OFFSET = 9200;
const ORCHESTRATOR = 7104 + OFFSET;
const POLICY = 7102 + OFFSET;
const WARMUP = 5;
const SAMPLES = 40;

/** Milliseconds from sending the request to the first response chunk holding stdout. */
function firstByte(ca: Buffer, token: string, path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const started = performance.now();
    let at: number | undefined;
    const req = httpsRequest(
      { host: '127.0.0.1', port: ORCHESTRATOR, path, method: 'POST', ca, servername: 'localhost', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.on('data', (chunk: Buffer) => {
          if (at === undefined && chunk.toString('utf8').includes('"stdout"')) at = performance.now() - started;
        });
        res.on('end', () => (at === undefined ? reject(new Error(`no stdout (status ${res.statusCode})`)) : resolve(at)));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export async function sandboxBenchmark(): Promise<Record<string, number>> {
  const tenant = `bench-${randomBytes(4).toString('hex')}`;
  const users = await TestTokenIssuer.create(audienceOf('sandbox-orchestrator'));
  const admins = await TestTokenIssuer.create(audienceOf('policy'));
  const jwks = JSON.stringify({ keys: [users, admins].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
  const handles = runner.startServices({
    services: ['policy', 'sandbox-orchestrator'],
    portOffset: OFFSET,
    logDir: join(infra('PALISADE_HOME'), 'logs', 'sandbox-bench'),
    env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn', SANDBOX_INSTANCE: 'bench9200', SANDBOX_BILLING: 'off' },
  });
  try {
    await runner.waitReady(handles, { timeoutMs: 120000 });
    const alice = await users.token({ sub: 'alice', tid: tenant, ptp: 'user' });
    const admin = await admins.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });
    const policy = (path: string, method: string, body: unknown) => httpsCaller(POLICY)(path, { token: admin, method, body });
    await policy('/v1/roles/coder', 'PUT', { inherits: [] });
    await policy('/v1/assignments', 'POST', { assignments: [{ subject: 'user:alice', role: 'coder' }] });
    await policy('/v1/policies/tools', 'PUT', { rules: [{ id: 'coders-run-code', effect: 'allow', subject: 'role:coder', resource: 'tool', action: 'invoke' }] });
    await policy('/v1/tools', 'PUT', { tools: ['execute_code'] });
    const api = httpsCaller(ORCHESTRATOR, { token: alice });
    const session = (await api('/v1/sessions', { method: 'POST', body: {} })).json.id as string;

    const start: number[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const t0 = performance.now();
      const created = await api(`/v1/sessions/${session}/sandboxes`, { method: 'POST', body: { template: 'small' } });
      const ms = performance.now() - t0;
      if (created.status !== 201) throw new Error(`create: ${created.status} ${created.body}`);
      if (i >= WARMUP) start.push(ms);
      await api(`/v1/sandboxes/${created.json.id}`, { method: 'DELETE' });
    }

    const sandbox = (await api(`/v1/sessions/${session}/sandboxes`, { method: 'POST', body: { template: 'small' } })).json.id as string;
    const echo = { command: ['/bin/echo', 'x'] };
    // the policy may take a moment to see the new rules
    for (let i = 0; i < 100 && (await api(`/v1/sandboxes/${sandbox}/executions`, { method: 'POST', body: echo })).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const first: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      const fb = await firstByte(ca, alice, `/v1/sandboxes/${sandbox}/executions/stream`, echo);
      const t0 = performance.now();
      const done = await api(`/v1/sandboxes/${sandbox}/executions`, { method: 'POST', body: echo });
      const ms = performance.now() - t0;
      if (done.json?.stdout !== 'x\n') throw new Error(`exec: ${done.status} ${done.body}`);
      if (i >= WARMUP) {
        first.push(fb);
        total.push(ms);
      }
    }
    await api(`/v1/sandboxes/${sandbox}`, { method: 'DELETE' });
    const s = summarize(start);
    const f = summarize(first);
    const e = summarize(total);
    return {
      start_p50_ms: round(s.p50),
      start_p99_ms: round(s.p99),
      exec_first_byte_p50_ms: round(f.p50),
      exec_first_byte_p99_ms: round(f.p99),
      exec_total_p50_ms: round(e.p50),
      samples: SAMPLES,
    };
  } finally {
    await Promise.all(handles.map((h: { stop(): Promise<unknown> }) => h.stop()));
  }
}
