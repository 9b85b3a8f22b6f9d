import { spawn } from 'node:child_process';
import { join } from 'node:path';

// service-kit's cluster primary (built: dist/cluster.js) with workers that die, refuse their
// configuration, serve, or ignore SIGTERM (test/fixtures/cluster-primary.js). No infrastructure.
type Line = { level: string; msg: string; worker?: number; missed?: number; ms?: number; payload?: unknown; answers?: unknown[] };
function run(mode: string, signalAfterListening?: NodeJS.Signals): Promise<{ code: number | null; lines: Line[]; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'cluster-primary.js')], { env: { ...process.env, FIXTURE_MODE: mode }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let signalled = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      // both workers were told the database is migrated, and listen (their own lines, on the primary's stdout)
      if (signalAfterListening && !signalled && out.split('"msg":"worker listening"').length - 1 === 2) signalled = child.kill(signalAfterListening);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
      resolve({ code, lines, ms: Date.now() - started });
    });
  });
}

describe('cluster primary', () => {
  it('restarts workers that die before listening, with backoff, then gives up with exit 1', async () => {
    const { code, lines } = await run('die');
    expect(code).toBe(1);
    expect(lines.filter((l) => l.msg === 'worker exited').length).toBeGreaterThanOrEqual(5);
    const delays = lines.filter((l) => l.msg === 'starting a new worker').map((l) => (l as unknown as { delayMs: number }).delayMs);
    expect(delays.slice(0, 3)).toEqual([100, 200, 400]);
    expect(lines.some((l) => l.level === 'fatal' && l.msg === 'workers keep dying before they listen; stopping')).toBe(true);
  }, 30_000);

  it('stops at once with exit 78 when a worker refuses its configuration', async () => {
    const { code, lines } = await run('config');
    expect(code).toBe(78);
    expect(lines.filter((l) => l.msg === 'starting a new worker')).toHaveLength(0);
  }, 30_000);

  it('on SIGTERM passes it on and exits 0 once the workers have stopped', async () => {
    const { code, lines } = await run('serve', 'SIGTERM');
    expect(code).toBe(0);
    expect(lines.filter((l) => l.msg === 'worker listening')).toHaveLength(2);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['stopping workers', 'workers stopped']));
    expect(lines.filter((l) => l.msg === 'worker exited')).toHaveLength(0);
  }, 30_000);

  it('kills workers that do not stop within its bound, and exits 1', async () => {
    const { code, lines, ms } = await run('stubborn', 'SIGTERM');
    expect(code).toBe(1);
    expect(lines.some((l) => l.msg === 'workers did not stop in time; killed')).toBe(true);
    expect(ms).toBeLessThan(10_000);
  }, 30_000);

  it('passes a worker\'s broadcast to the other, which runs its handlers before the sender is answered', async () => {
    const { code, lines } = await run('broadcast');
    expect(code).toBe(0);
    const ran = lines.filter((l) => l.msg === 'handler ran');
    expect(ran.map((l) => [l.worker, l.payload])).toEqual(expect.arrayContaining([[1, { tenantId: 'acme' }], [2, { tenantId: 'acme' }]]));
    expect(ran).toHaveLength(2);
    const answered = lines.findIndex((l) => l.msg === 'broadcast answered');
    expect(lines[answered]).toMatchObject({ worker: 1, missed: 0 });
    // the other worker's handler ran (its line written before it said so) before the sender was answered
    expect(lines.findIndex((l) => l.msg === 'handler ran' && l.worker === 2)).toBeLessThan(answered);
  }, 30_000);

  it('answers the sender without a worker that does not say it ran the handlers, after 2 s, counting it missed', async () => {
    const { code, lines } = await run('deaf');
    expect(code).toBe(0);
    expect(lines.filter((l) => l.msg === 'handler ran').map((l) => l.worker)).toEqual([1]);
    const answered = lines.find((l) => l.msg === 'broadcast answered');
    expect(answered).toMatchObject({ worker: 1, missed: 1 });
    expect(answered!.ms).toBeGreaterThanOrEqual(1900);
  }, 30_000);

  it.each([
    ['gathers every worker\'s answer through the primary, its own first', 'gather', { worker: 2, value: { worker: 2, payload: 'asked' } }],
    ['names a worker that gives no answer within 2 s', 'gather-deaf', { worker: 2, error: 'worker 2 did not answer within 2000 ms' }],
  ])('%s', async (_name, mode, second) => {
    const { code, lines } = await run(mode);
    expect(code).toBe(0);
    expect(lines.find((l) => l.msg === 'gathered')).toMatchObject({ worker: 1, answers: [{ worker: 1, value: { worker: 1, payload: 'asked' } }, second] });
  }, 30_000);
});
