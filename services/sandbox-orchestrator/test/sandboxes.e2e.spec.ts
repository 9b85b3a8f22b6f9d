import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { eventually, httpsCaller, infra, TestTokenIssuer, type CallOptions, type Reply } from '@palisade/testing';

// The built sandbox-orchestrator (real crun runtime, instance e2e9100), policy and billing
// services at offset 9100 (ports 16204, 16202, 16207). Tokens of our own keys through
// AUTH_JWKS, as in sessions.e2e.spec.ts. Executions are held and metered by billing (a
// price table of the tenant for provider `sandbox`); tenant quotas are small here (3
// sandboxes, 4 CPU-seconds an hour). Nothing here is timed: timeouts are generous for a busy machine.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require('../../../scripts/platform-runner.js');
const OFFSET = 9100;
const ORCHESTRATOR = 7104 + OFFSET;
const POLICY = 7102 + OFFSET;
const BILLING = 7107 + OFFSET;
const CPU_QUOTA = 4;
const INSTANCE = 'e2e9100';
// this deployment's requests on subjects of their own (libs/nats rpcWireSubject): a policy or
// billing instance of another suite on the shared NATS never answers them; the services inherit it
process.env.PALISADE_RPC_NAMESPACE = INSTANCE;
const RUN_DIR = process.env.SANDBOX_RUN_DIR ?? '/run/palisade-sandbox';
const CRUN = process.env.SANDBOX_CRUN ?? 'crun';

const tenant = `x-${randomBytes(4).toString('hex')}`;
const other = `y-${randomBytes(4).toString('hex')}`;

jest.setTimeout(90_000);

describe('sandboxes (real crun runtime, with the policy service)', () => {
  type Handle = { stop(signal?: string): Promise<unknown>; name: string };
  let handles: Handle[] = [];
  let jwks: string;
  const t: Record<string, string> = {};
  let policyAdmin: string;
  let admins: TestTokenIssuer;
  let billingAdmin: string;
  const orchestrator = (path: string, token: string, options: CallOptions = {}) => httpsCaller(ORCHESTRATOR)(path, { token, timeoutMs: 60_000, ...options });
  const policy = (path: string, options: CallOptions) => httpsCaller(POLICY)(path, { token: policyAdmin, ...options });
  const billing = (path: string, options: CallOptions = {}) => httpsCaller(BILLING)(path, { token: billingAdmin, ...options });
  /** What the tenant's budget holds for executions not settled yet. */
  const tenantPending = async () => (await billing(`/v1/budgets/tenant/${tenant}`)).json.pendingMicros as string;
  const requestsOf = async (agent: string) => {
    const day = 24 * 3_600_000;
    const report = await billing(`/v1/usage?from=${new Date(Date.now() - day).toISOString()}&to=${new Date(Date.now() + day).toISOString()}&groupBy=agent,model`);
    return (report.json.rows as Array<{ agentId: string; model: string; requests: number; postedMicros: string }>).filter((r) => r.agentId === agent);
  };
  const message = (r: Reply) => String(r.json?.error?.message ?? '');
  const start = (services: string[]) =>
    runner.startServices({
      services,
      portOffset: OFFSET,
      logDir: join(infra('PALISADE_HOME'), 'logs', 'sandboxes-e2e'),
      env: { AUTH_JWKS: jwks, LOG_LEVEL: 'warn', SANDBOX_INSTANCE: INSTANCE, SANDBOX_TENANT_MAX_SANDBOXES: '3', SANDBOX_TENANT_CPU_SECONDS: String(CPU_QUOTA), SANDBOX_TENANT_CPU_WINDOW_HOURS: '1', SANDBOX_FILE_MAX_BYTES: '65536' },
    }) as Handle[];
  const containers = () =>
    execFileSync(CRUN, ['--root', join(RUN_DIR, INSTANCE, 'crun'), 'list', '-q'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(`psbx-${INSTANCE}-`));
  /** The instance's sandbox networks on the host: its sandboxes' and those its namespace pool keeps prepared. */
  const networks = () =>
    execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`psbx-${INSTANCE}-net-`));

  let session: string;
  let sandbox: string;
  let sandboxToken: string;
  const self = (path: string, token: string, options: CallOptions = {}) => httpsCaller(ORCHESTRATOR)(path, { token, ...options });
  const bytes = (content: string | Buffer) => ({ method: 'PUT', raw: content, headers: { 'content-type': 'application/octet-stream' } });

  beforeAll(async () => {
    const users = await TestTokenIssuer.create(audienceOf('sandbox-orchestrator'));
    admins = await TestTokenIssuer.create(audienceOf('policy'));
    const billers = await TestTokenIssuer.create(audienceOf('billing'));
    jwks = JSON.stringify({ keys: [users, admins, billers].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys) });
    handles = start(['policy', 'billing', 'sandbox-orchestrator']);
    await runner.waitReady(handles, { timeoutMs: 120000 });
    for (const id of ['alice', 'bob', 'carol']) t[id] = await users.token({ sub: id, tid: tenant, ptp: 'user' });
    t.mallory = await users.token({ sub: 'mallory', tid: other, ptp: 'user' });
    t.bot = await users.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.strayBot = await users.token({ sub: 'stray-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    policyAdmin = await admins.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });
    billingAdmin = await billers.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['billing:admin'] });
    t.poorBot = await users.token({ sub: 'poor-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    t.quotaAdmin = await users.token({ sub: 'admin', tid: tenant, ptp: 'user', scp: ['policy:admin'] });
    t.otherAdmin = await users.token({ sub: 'olga', tid: other, ptp: 'user', scp: ['policy:admin'] });
    // sandbox usage priced per template: 1 µ per CPU-ms, 0.001 µ per MB·ms, 1 µ per wall-ms
    const prices = ['small', 'default', 'large'].flatMap((model) =>
      [['cpu_ms', '1000000'], ['memory_mb_ms', '1000'], ['wall_ms', '1000000']].map(([kind, microsPerMillion]) => ({ provider: 'sandbox', model, kind, microsPerMillion })),
    );
    expect((await billing('/v1/price-tables', { method: 'PUT', body: { currency: 'USD', entries: prices } })).status).toBe(200);
    expect((await billing(`/v1/budgets/tenant/${tenant}`, { method: 'PUT', body: { limitMicros: '1000000000', period: 'month' } })).status).toBe(200);
    expect((await billing('/v1/budgets/agent/poor-bot', { method: 'PUT', body: { limitMicros: '1000', period: 'day' } })).status).toBe(200);
    // execute_code: allowlisted for the tenant and for release-bot (not stray-bot); alice and bob may invoke it
    expect((await policy('/v1/roles/coder', { method: 'PUT', body: { inherits: [] } })).status).toBeLessThan(300);
    const coders = ['user:alice', 'user:bob', 'agent:release-bot', 'agent:stray-bot', 'agent:poor-bot'].map((subject) => ({ subject, role: 'coder' }));
    expect((await policy('/v1/assignments', { method: 'POST', body: { assignments: coders } })).status).toBeLessThan(300);
    expect((await policy('/v1/policies/tools', { method: 'PUT', body: { rules: [{ id: 'coders-run-code', effect: 'allow', subject: 'role:coder', resource: 'tool', action: 'invoke' }] } })).status).toBeLessThan(300);
    expect((await policy('/v1/tools', { method: 'PUT', body: { tools: ['execute_code'] } })).status).toBeLessThan(300);
    for (const bot of ['release-bot', 'poor-bot']) expect((await policy(`/v1/agents/${bot}/tools`, { method: 'PUT', body: { tools: ['execute_code'] } })).status).toBeLessThan(300);
    const created = await orchestrator('/v1/sessions', t.alice, { method: 'POST', body: {} });
    session = created.json.id;
    await orchestrator(`/v1/sessions/${session}/members/carol`, t.alice, { method: 'PUT', body: { role: 'viewer' } });
    for (const bot of ['release-bot', 'stray-bot', 'poor-bot']) await orchestrator(`/v1/sessions/${session}/agents/${bot}`, t.alice, { method: 'PUT' });
  }, 180000);

  afterAll(async () => {
    await Promise.all(handles.map((h) => h.stop()));
  });

  it('creates a sandbox in a session from a template and runs code in it: output, exit code, reason, usage; the result again by id', async () => {
    const created = await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'small' } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ sessionId: session, template: 'small', status: 'ready', limits: { memoryMb: 256, pids: 64 } });
    sandbox = created.json.id;
    sandboxToken = created.json.sandboxToken;
    expect(sandboxToken).toMatch(/^eyJ/);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}`, t.alice)).json.sandboxToken).toBeUndefined(); // shown once
    // the policy may need a moment to see the new rules: retry the first execution until allowed
    let run!: Reply;
    await eventually(async () => {
      run = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { language: 'python', code: 'import os\nprint("hello", os.getuid())\nopen("/workspace/kept", "w").write("yes")' } });
      return run.status === 200;
    }, 20000, 200);
    expect(run.json).toMatchObject({ status: 'finished', reason: 'exited', exitCode: 0, stdout: 'hello 1000\n', program: 'python' });
    expect(run.json.usage.wallSeconds).toBeGreaterThan(0);
    const again = await orchestrator(`/v1/sandboxes/${sandbox}/executions/${run.json.id}`, t.carol);
    expect(again.json).toMatchObject({ id: run.json.id, stdout: 'hello 1000\n', reason: 'exited' });
    const withStdin = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/sh', '-c', 'cat /workspace/kept; cat; echo "$GREETING"; exit 4'], stdin: '-in-', env: { GREETING: 'hi' } } });
    expect(withStdin.json).toMatchObject({ reason: 'exited', exitCode: 4, stdout: 'yes-in-hi\n' });
  });

  it('streams stdout and stderr as NDJSON while the program runs, then its outcome', async () => {
    const r = await orchestrator(`/v1/sandboxes/${sandbox}/executions/stream`, t.alice, { method: 'POST', body: { command: ['/bin/sh', '-c', 'echo one; echo oops >&2; sleep 0.2; echo two'] } });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('application/x-ndjson');
    const lines = r.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => 'stdout' in l).map((l) => l.stdout).join('')).toBe('one\ntwo\n');
    expect(lines.filter((l) => 'stderr' in l).map((l) => l.stderr).join('')).toBe('oops\n');
    expect(lines[lines.length - 1].execution).toMatchObject({ reason: 'exited', exitCode: 0, stdout: 'one\ntwo\n' });
    const refused = await orchestrator(`/v1/sandboxes/${sandbox}/executions/stream`, t.strayBot, { method: 'POST', body: { command: ['/bin/true'] } });
    expect(refused.status).toBe(403); // refusals before it starts are ordinary errors
  });

  it('lets a client that went away reattach to the execution by id: its output from the start, the rest as it comes, its outcome', async () => {
    // a streaming client reads the execution id and the first line, then hangs up
    const firstLines = await new Promise<Array<Record<string, string>>>((resolve, reject) => {
      const lines: Array<Record<string, string>> = [];
      let buffered = '';
      const req = request(
        { host: '127.0.0.1', port: ORCHESTRATOR, path: `/v1/sandboxes/${sandbox}/executions/stream`, method: 'POST', servername: 'localhost', ca: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt')), headers: { authorization: `Bearer ${t.alice}`, 'content-type': 'application/json' } },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffered += chunk;
            const parts = buffered.split('\n');
            buffered = parts.pop()!;
            lines.push(...parts.map((l) => JSON.parse(l) as Record<string, string>));
            if (lines.some((l) => l.stdout)) {
              req.destroy();
              resolve(lines);
            }
          });
          res.on('end', () => resolve(lines));
        },
      );
      req.on('error', (error) => (lines.some((l) => l.stdout) ? undefined : reject(error)));
      req.end(JSON.stringify({ command: ['/bin/sh', '-c', 'echo one; sleep 1; echo two >&2; sleep 1; echo three'] }));
    });
    const executionId = firstLines[0].executionId;
    expect(executionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(firstLines[1]).toEqual({ stdout: 'one\n' });
    const again = await orchestrator(`/v1/sandboxes/${sandbox}/executions/${executionId}/stream`, t.carol); // a viewer may read
    expect(again.status).toBe(200);
    const lines = again.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => 'stdout' in l || 'stderr' in l)).toEqual([{ stdout: 'one\n' }, { stderr: 'two\n' }, { stdout: 'three\n' }]);
    expect(lines[lines.length - 1].execution).toMatchObject({ id: executionId, reason: 'exited', stdout: 'one\nthree\n', stderr: 'two\n' });
    // a finished one: its stored output, then its outcome
    const later = await orchestrator(`/v1/sandboxes/${sandbox}/executions/${executionId}/stream`, t.alice);
    expect(later.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([{ stdout: 'one\nthree\n' }, { stderr: 'two\n' }, { execution: expect.objectContaining({ id: executionId }) }]);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/executions/${executionId}/stream`, t.bob)).status).toBe(404);
  });

  it('reports a timeout and an OOM kill as such', async () => {
    const slow = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/sleep', '30'], timeoutMs: 1000 } });
    expect(slow.json).toMatchObject({ reason: 'timeout', signal: 'SIGKILL', exitCode: null });
    const bomb = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { language: 'python', code: 'a = []\nwhile True: a.append(bytearray(32 * 1024 * 1024))' } });
    expect(bomb.json).toMatchObject({ reason: 'oom' });
  });

  it('lets an agent run code within its user’s rights and allowlist; refuses a stray agent and a viewer with 403 naming the rule', async () => {
    const byBot = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { command: ['/bin/echo', 'bot'] } });
    expect(byBot.status).toBe(200);
    expect(byBot.json.stdout).toBe('bot\n');
    const stray = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.strayBot, { method: 'POST', body: { command: ['/bin/echo', 'stray'] } });
    expect(stray.status).toBe(403);
    expect(message(stray)).toMatch(/^policy denies invoke \(rule agent-tool-allowlist\)/);
    const viewer = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.carol, { method: 'POST', body: { command: ['/bin/echo', 'viewer'] } });
    expect(viewer.status).toBe(403);
    expect(message(viewer)).toContain('policy denies write (rule');
    expect((await orchestrator(`/v1/sessions/${session}/sandboxes`, t.carol, { method: 'POST', body: {} })).status).toBe(403);
  });

  it('holds each execution’s worst case in billing first and settles its usage exactly once; an agent over budget gets 429 naming it', async () => {
    // what release-bot ran before (the test above) is settled first
    await eventually(async () => (await requestsOf('release-bot'))[0]?.requests === 1 && (await tenantPending()) === '0', 30000, 200);
    const [before] = await requestsOf('release-bot');
    for (const word of ['one', 'two']) {
      const run = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { command: ['/bin/echo', word], timeoutMs: 5000 } });
      expect(run.json).toMatchObject({ reason: 'exited', stdout: `${word}\n` });
    }
    // billing's durable settles each hold from its usage event: two requests, nothing pending, something posted
    let rows: Awaited<ReturnType<typeof requestsOf>> = [];
    await eventually(async () => {
      rows = await requestsOf('release-bot');
      return rows[0]?.requests === before.requests + 2 && (await tenantPending()) === '0';
    }, 30000, 200);
    await new Promise((r) => setTimeout(r, 1000));
    rows = await requestsOf('release-bot');
    expect(rows).toEqual([expect.objectContaining({ agentId: 'release-bot', model: 'small', requests: before.requests + 2 })]); // once each, not again
    const posted = BigInt(rows[0].postedMicros) - BigInt(before.postedMicros);
    expect(posted).toBeGreaterThan(0n);
    expect(posted).toBeLessThan(2n * (2500n + 256n * 5n + 5000n)); // each below its worst case (5 s: 2.5 CPU-s, 256 MB, 5 s)
    // the agent's 1000 µ budget cannot hold the worst case of even a one-second execution
    const poor = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.poorBot, { method: 'POST', body: { command: ['/bin/echo', 'spend'], timeoutMs: 1000 } });
    expect(poor.status).toBe(429);
    expect(message(poor)).toMatch(/^the agent budget has no room for this execution \(limit 1000 micro-units, resets at /);
    expect(poor.json.error.details).toMatchObject({ budget: { level: 'agent', limitMicros: 1000 } });
    expect(await requestsOf('poor-bot')).toEqual([]);
  });

  it('uploads and downloads workspace files (as an execution may), confined to the workspace, capped in size', async () => {
    const up = await orchestrator(`/v1/sandboxes/${sandbox}/files?path=dir/hello.txt`, t.alice, bytes('hi there'));
    expect(up.status).toBe(200);
    expect(up.json).toEqual({ path: '/workspace/dir/hello.txt', bytes: 8 });
    const seen = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/sh', '-c', 'cat /workspace/dir/hello.txt; echo; stat -c %u /workspace/dir/hello.txt; echo made > /workspace/dir/out.txt'] } });
    expect(seen.json).toMatchObject({ reason: 'exited', stdout: 'hi there\n1000\n' });
    const down = await orchestrator(`/v1/sandboxes/${sandbox}/files?path=/workspace/dir/out.txt`, t.bot);
    expect(down.status).toBe(200);
    expect(down.headers['content-type']).toContain('application/octet-stream');
    expect(down.body).toBe('made\n');
    // links made inside the sandbox lead nowhere: not to a host file, not out through a directory
    await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/sh', '-c', 'ln -s /etc/passwd /workspace/esc; ln -s / /workspace/root; ln -s dir /workspace/d'] } });
    for (const path of ['esc', 'root/etc/passwd', 'd/hello.txt', '../sandboxes', '/etc/passwd', 'dir/../../x']) {
      const r = await orchestrator(`/v1/sandboxes/${sandbox}/files?path=${encodeURIComponent(path)}`, t.alice);
      expect([path, r.status]).toEqual([path, 400]);
    }
    expect(message(await orchestrator(`/v1/sandboxes/${sandbox}/files?path=esc`, t.alice))).toContain('symbolic link');
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/files?path=root/tmp/planted`, t.alice, bytes('x'))).status).toBe(400);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/files?path=../planted`, t.alice, bytes('x'))).status).toBe(400);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/files?path=big`, t.alice, bytes(Buffer.alloc(65537, 97)))).status).toBe(413);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/files?path=missing`, t.alice)).status).toBe(404);
    // the same decisions as an execution: a viewer and a stray agent are refused naming the rule, a stranger sees nothing
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/files?path=dir/hello.txt`, t.carol)).status).toBe(403);
    const stray = await orchestrator(`/v1/sandboxes/${sandbox}/files?path=x`, t.strayBot, bytes('x'));
    expect(stray.status).toBe(403);
    expect(message(stray)).toMatch(/rule agent-tool-allowlist/);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/files?path=dir/hello.txt`, t.bob)).status).toBe(404);
  });

  it('gives each sandbox a token for its own callbacks only, never a person’s or agent’s, that ends with the sandbox', async () => {
    const own = await self('/v1/sandbox/self', sandboxToken);
    expect(own.status).toBe(200);
    expect(own.json).toMatchObject({ id: sandbox, status: 'ready' });
    expect((await self('/v1/sandbox/self/files?path=note.md', sandboxToken, bytes('from the sandbox token'))).json).toEqual({ path: '/workspace/note.md', bytes: 22 });
    expect((await self('/v1/sandbox/self/files?path=note.md', sandboxToken)).body).toBe('from the sandbox token');
    expect((await self('/v1/sandbox/self/files?path=esc', sandboxToken)).status).toBe(400);
    // it opens nothing else: not the sandbox's routes for people and agents, not its session
    expect((await self(`/v1/sandboxes/${sandbox}`, sandboxToken)).status).toBe(401);
    expect((await self(`/v1/sandboxes/${sandbox}/files?path=note.md`, sandboxToken)).status).toBe(401);
    expect((await self(`/v1/sessions/${session}`, sandboxToken)).status).toBe(401);
    expect((await self(`/v1/sandboxes/${sandbox}/executions`, sandboxToken, { method: 'POST', body: { command: ['/bin/true'] } })).status).toBe(401);
    // and people's or agents' tokens do not open the self routes
    expect((await self('/v1/sandbox/self', t.alice)).status).toBe(401);
    expect((await self('/v1/sandbox/self', '')).status).toBe(401);
    // another sandbox's token opens that one only, and dies with it
    const other = await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'small' } });
    expect((await self('/v1/sandbox/self', other.json.sandboxToken)).json.id).toBe(other.json.id);
    expect((await self('/v1/sandbox/self/files?path=note.md', other.json.sandboxToken)).status).toBe(404);
    expect((await orchestrator(`/v1/sandboxes/${other.json.id}`, t.alice, { method: 'DELETE' })).status).toBe(204);
    const dead = await self('/v1/sandbox/self', other.json.sandboxToken);
    expect(dead.status).toBe(401);
    expect(message(dead)).toBe('sandbox token: its sandbox is stopped or gone');
    expect(JSON.stringify(own.json)).not.toContain(sandboxToken);
  });

  it('lets the tenant’s administrators set its own quotas (at most the platform’s, If-Match), enforced at the next creation; nobody else', async () => {
    const quotas = `/v1/sandbox-quotas/${tenant}`;
    const platform = await orchestrator(quotas, t.quotaAdmin);
    expect(platform.status).toBe(200);
    expect(platform.json).toMatchObject({ tenantId: tenant, maxSandboxes: 3, cpuSeconds: CPU_QUOTA, source: 'platform', cpuWindowHours: 1, etag: 0 });
    expect(platform.headers.etag).toBe('"0"');
    const set = await orchestrator(quotas, t.quotaAdmin, { method: 'PUT', body: { maxSandboxes: 2, cpuSeconds: CPU_QUOTA }, headers: { 'if-match': '"0"' } });
    expect(set.status).toBe(200);
    expect(set.json).toMatchObject({ maxSandboxes: 2, source: 'tenant', etag: 1 });
    expect((await orchestrator(quotas, t.quotaAdmin, { method: 'PUT', body: { maxSandboxes: 1, cpuSeconds: 1 }, headers: { 'if-match': '"0"' } })).status).toBe(409);
    const above = await orchestrator(quotas, t.quotaAdmin, { method: 'PUT', body: { maxSandboxes: 4, cpuSeconds: 1 } });
    expect(above.status).toBe(400);
    expect(message(above)).toBe("maxSandboxes: at most the platform's 3");
    expect((await orchestrator(quotas, t.quotaAdmin, { method: 'PUT', body: { maxSandboxes: 1 } })).status).toBe(400);
    expect((await orchestrator(quotas, t.quotaAdmin, { method: 'PUT', body: { maxSandboxes: 1, cpuSeconds: 1, extra: true } })).status).toBe(400);
    expect((await orchestrator(quotas, t.bot, { method: 'PUT', body: { maxSandboxes: 3, cpuSeconds: 100 } })).status).toBe(403);
    expect((await orchestrator(quotas, t.alice, { method: 'PUT', body: { maxSandboxes: 3, cpuSeconds: 100 } })).status).toBe(403);
    expect((await orchestrator(quotas, t.otherAdmin)).status).toBe(404);
    expect((await orchestrator(quotas, t.otherAdmin, { method: 'DELETE' })).status).toBe(404);
    // the tenant's 2 now: one sandbox is there, a second one fits, a third is refused naming the tenant's limit
    const second = await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'small' } });
    expect(second.status).toBe(201);
    const third = await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'small' } });
    expect(third.status).toBe(429);
    expect(message(third)).toMatch(/^quota concurrent-sandboxes: .*\(limit 2\)/);
    expect((await orchestrator(`/v1/sandboxes/${second.json.id}`, t.alice, { method: 'DELETE' })).status).toBe(204);
    // removed: the platform's apply again
    expect((await orchestrator(quotas, t.quotaAdmin, { method: 'DELETE', headers: { 'if-match': '"1"' } })).status).toBe(204);
    expect((await orchestrator(quotas, t.quotaAdmin)).json).toMatchObject({ maxSandboxes: 3, source: 'platform', etag: 2 });
  });

  it('refuses a sandbox past the tenant’s concurrent sandboxes with 429 naming the quota', async () => {
    const extra: string[] = [];
    let refused: Reply | undefined;
    for (let i = 0; i < 3 && !refused; i++) {
      const r = await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'small' } });
      if (r.status === 201) extra.push(r.json.id);
      else refused = r;
    }
    expect(extra).toHaveLength(2); // the tenant's third, beside the first one
    expect(refused!.status).toBe(429);
    expect(message(refused!)).toMatch(/^quota concurrent-sandboxes: .*\(limit 3\)/);
    for (const id of extra) expect((await orchestrator(`/v1/sandboxes/${id}`, t.alice, { method: 'DELETE' })).status).toBe(204);
    expect((await orchestrator(`/v1/sessions/${session}/sandboxes`, t.carol, { method: 'POST', body: {} })).status).toBe(403); // a refusal of the policy still comes first
  });

  it('answers 404 to anyone the session is not shared with, in this tenant or another; refuses bad input', async () => {
    for (const who of ['bob', 'mallory']) {
      for (const [path, options] of [
        [`/v1/sandboxes/${sandbox}`, {}],
        [`/v1/sandboxes/${sandbox}/executions`, { method: 'POST', body: { command: ['/bin/true'] } }],
        [`/v1/sandboxes/${sandbox}/stop`, { method: 'POST' }],
        [`/v1/sandboxes/${sandbox}`, { method: 'DELETE' }],
        [`/v1/sessions/${session}/sandboxes`, { method: 'POST', body: {} }],
      ] as const) {
        const r = await orchestrator(path, t[who], options as CallOptions);
        expect(r.status).toBe(404);
      }
    }
    const bad = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/true'], env: { LD_PRELOAD: '/x' } } });
    expect(bad.status).toBe(400);
    expect((await orchestrator(`/v1/sessions/${session}/sandboxes`, t.alice, { method: 'POST', body: { template: 'huge' } })).status).toBe(400);
  });

  it('leaves no orphan after kill -9: the restarted orchestrator removes the container, reports the execution lost and adopts the sandbox', async () => {
    const settledBefore = await requestsOf('user:alice');
    const running = orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/sleep', '60'] } }).catch(() => undefined);
    let executionId = '';
    await eventually(async () => {
      const view = await orchestrator(`/v1/sandboxes/${sandbox}`, t.alice);
      executionId = view.json.runningExecution ?? '';
      return executionId !== '' && containers().length >= 1;
    }, 20000, 100);
    const before = containers(); // the running execution's (and, with the warm pool, the next one made ahead)
    const orchestratorHandle = handles.find((h) => h.name === 'sandbox-orchestrator')!;
    await orchestratorHandle.stop('SIGKILL');
    await running;
    expect(containers()).toEqual(before); // the orphans are there while nothing owns them
    const orphanNetworks = networks(); // the sandboxes' and the namespace pool's prepared ones (default 4), nobody's now
    expect(orphanNetworks.length).toBeGreaterThan(4);
    const [restarted] = start(['sandbox-orchestrator']);
    handles = [...handles.filter((h) => h !== orchestratorHandle), restarted];
    await runner.waitReady([restarted], { timeoutMs: 120000 });
    expect(containers().filter((c) => before.includes(c))).toEqual([]); // (the adopted sandbox may have a new warm one)
    // every network of the dead process removed (the adopted sandbox got a new one), the pool prepared again
    await eventually(async () => networks().length > 4, 30000, 200);
    expect(networks().filter((n) => orphanNetworks.includes(n))).toEqual([]);
    const lost = await orchestrator(`/v1/sandboxes/${sandbox}/executions/${executionId}`, t.alice);
    expect(lost.json).toMatchObject({ status: 'finished', reason: 'lost' });
    const view = await orchestrator(`/v1/sandboxes/${sandbox}`, t.alice);
    expect(view.json).toMatchObject({ status: 'ready' });
    expect(view.json.runningExecution).toBeUndefined();
    const after = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/cat', '/workspace/kept'] } });
    expect(after.json).toMatchObject({ reason: 'exited', stdout: 'yes' }); // adopted: the workspace survived
    // the signing key of sandbox tokens was the dead process's: tokens are minted again by someone who may write
    expect((await self('/v1/sandbox/self', sandboxToken)).status).toBe(401);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}/token`, t.carol, { method: 'POST' })).status).toBe(403);
    const minted = await orchestrator(`/v1/sandboxes/${sandbox}/token`, t.alice, { method: 'POST' });
    expect(minted.status).toBe(200);
    sandboxToken = minted.json.sandboxToken;
    expect((await self('/v1/sandbox/self', sandboxToken)).json).toMatchObject({ id: sandbox, status: 'ready' });
    // billed: the execution after the restart; not billed: the lost one (its hold released at once, not left to expire)
    await eventually(async () => (await requestsOf('user:alice'))[0]?.requests === settledBefore[0].requests + 1, 30000, 200);
    await eventually(async () => (await tenantPending()) === '0', 10000, 200);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await requestsOf('user:alice'))[0].requests).toBe(settledBefore[0].requests + 1);
  });

  it('answers requires_approval for a critical tool with what to ask for; the approval token runs exactly that call, once', async () => {
    // the tenant makes tool invocation critical; bob may approve
    expect((await policy('/v1/policies/approvers', { method: 'PUT', body: { rules: [{ id: 'bob-approves', effect: 'allow', subject: 'user:bob', resource: 'approval', action: 'approve' }] } })).status).toBeLessThan(300);
    expect((await policy('/v1/critical-actions', { method: 'PUT', body: { actions: ['invoke'] } })).status).toBeLessThan(300);
    const body = { command: ['/bin/echo', 'pay 100 to acme'] };
    let refused!: Reply;
    await eventually(async () => {
      refused = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body });
      return refused.status === 403 && refused.json.error.details?.rule === 'critical-action';
    }, 20000, 200);
    expect(message(refused)).toMatch(/^policy: invoke requires an approval \(rule critical-action\)/);
    const { actionHash, ...ask } = refused.json.error.details.approval;
    expect(actionHash).toMatch(/^[0-9a-f]{64}$/);
    expect(ask).toMatchObject({ action: 'invoke', resource: { type: 'tool', id: 'execute_code' }, service: 'sandbox-orchestrator', parameters: { sandboxId: sandbox, inputSha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    // the agent asks the policy service, bob approves (alice may not approve her own agent's request)
    const botAtPolicy = await admins.token({ sub: 'release-bot', tid: tenant, ptp: 'agent', act: { sub: 'alice' } });
    const requested = await httpsCaller(POLICY)('/v1/approvals', { method: 'POST', token: botAtPolicy, body: ask });
    expect(requested.status).toBe(201);
    expect(requested.json.actionHash).toBe(actionHash); // the same action the orchestrator asked about
    const approved = await httpsCaller(POLICY)(`/v1/approvals/${requested.json.approvalId}/approve`, { method: 'POST', token: await admins.token({ sub: 'bob', tid: tenant, ptp: 'user' }) });
    expect(approved.status).toBe(200);
    const approvalToken = approved.json.token as string;
    // another call with the token is refused (it is bound to the exact input), and does not use it up
    const other = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { command: ['/bin/echo', 'pay 9999 to acme'], approvalToken } });
    expect(other.status).toBe(403);
    const run = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { ...body, approvalToken } });
    expect(run.status).toBe(200);
    expect(run.json).toMatchObject({ reason: 'exited', stdout: 'pay 100 to acme\n' });
    const replay = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body: { ...body, approvalToken } });
    expect(replay.status).toBe(403);
    expect(message(replay)).toContain('rule approval');
    expect((await policy('/v1/critical-actions', { method: 'PUT', body: { actions: ['orders.create', 'payments.create', 'contracts.sign'] } })).status).toBeLessThan(300);
    await eventually(async () => (await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.bot, { method: 'POST', body })).status === 200, 20000, 200);
  });

  it('kills an execution once the tenant’s CPU-seconds are used (reason quota), and refuses the next with 429 naming the quota', async () => {
    const spin = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, {
      method: 'POST',
      body: { language: 'python', code: `import time\nwhile time.process_time() < ${CPU_QUOTA + 0.2}: pass\nprint("spun")`, timeoutMs: 30000 },
    });
    // it would have spun past the quota; it is killed at what the tenant had left, well before its timeout
    expect(spin.json).toMatchObject({ reason: 'quota', signal: 'SIGKILL', stdout: '' });
    expect(spin.json.usage.cpuSeconds).toBeLessThan(CPU_QUOTA + 0.2);
    expect(spin.json.usage.wallSeconds).toBeLessThan(25);
    const refused = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/true'] } });
    expect(refused.status).toBe(429);
    expect(message(refused)).toMatch(new RegExp(`^quota cpu-seconds: the tenant's executions used \\d+ CPU-seconds in the last 1 hours \\(limit ${CPU_QUOTA}\\)`));
  });

  it('stops (nothing runs there any more) and deletes', async () => {
    const stopped = await orchestrator(`/v1/sandboxes/${sandbox}/stop`, t.alice, { method: 'POST' });
    expect(stopped.json).toMatchObject({ status: 'stopped' });
    const refused = await orchestrator(`/v1/sandboxes/${sandbox}/executions`, t.alice, { method: 'POST', body: { command: ['/bin/true'] } });
    expect(refused.status).toBe(409);
    expect(message(refused)).toBe('sandbox is stopped');
    expect((await orchestrator(`/v1/sandboxes/${sandbox}`, t.alice, { method: 'DELETE' })).status).toBe(204);
    expect((await orchestrator(`/v1/sandboxes/${sandbox}`, t.alice)).status).toBe(404);
  });
});
