import { systemEventContext } from '@palisade/contracts';
import { createDataSource, PgEventStore } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { alice, outcome, runtimeOf, session } from '../../test/sandboxes.memory';
import type { SandboxRuntime } from '../runtime/runtime.port';
import { sandboxDecider, sandboxStateOf } from './sandboxes.decider';
import type { SandboxEvent } from './sandboxes.events';
import { sandboxCpuGrantBootsMigration, sandboxCpuGrantsMigration, sandboxesMigration, sandboxQuotasMigration } from './sandboxes.migration';
import { SandboxesRepository } from './sandboxes.repository';
import { SandboxesService } from './sandboxes.service';

/**
 * Commands on a sandbox decide on its row (locked), not its stream: on real PostgreSQL the
 * row the inline projection keeps is the state the stream folds to, at its version, after
 * every kind of append; concurrent starts on one sandbox are serialised by the row's lock
 * (one runs, the other is refused), and the stream stays whole.
 */
const SESSION = '0190b7e4-0000-7000-8000-000000000001';

describe('SandboxesRepository: the row a command decides on (PostgreSQL)', () => {
  let db: TestSchema;
  let store: PgEventStore;
  let repo: SandboxesRepository;
  let service: SandboxesService;
  let finishRun: Array<() => void> = [];

  beforeAll(async () => {
    db = await createTestSchema('sbxrow');
    const migrator = createDataSource(db.owner, [sandboxesMigration(db.schema, TEST_APP_ROLE), sandboxQuotasMigration(db.schema, TEST_APP_ROLE), sandboxCpuGrantsMigration(db.schema, TEST_APP_ROLE), sandboxCpuGrantBootsMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    store = new PgEventStore(db.dataSource, db.schema);
    repo = new SandboxesRepository(db.dataSource, store);
    const runtime = {
      check: async () => undefined,
      create: async () => undefined,
      exec: runtimeOf(() => new Promise((resolve) => finishRun.push(() => resolve(outcome({ cpuSeconds: 0.5, memoryGbSeconds: 0.01, wallSeconds: 1 }))))),
      stop: async () => undefined,
      remove: async () => undefined,
      reconcile: async () => ({ containers: [], workspaces: [] }),
    } as unknown as SandboxRuntime;
    service = new SandboxesService({
      store,
      repo,
      sessions: { session: async () => ({ ...session, sessionId: SESSION }) },
      policy: () => ({ authorize: async () => ({ decision: 'allow', rule: 'test', reason: 'ok' }) }),
      runtime,
      settings: { outputCapBytes: 1024, idleStopMs: 60_000, instance: 'int', lifetimeMs: 3_600_000, quotas: { maxSandboxes: 5, cpuSeconds: 100, cpuWindowMs: 3_600_000 }, fileMaxBytes: 1024 },
      eventContext: systemEventContext('sandbox-orchestrator'),
    });
  });
  afterAll(() => db.drop());

  /** The stream folded by the decider, and the row's state and version, side by side. */
  async function stateAndRow(sandboxId: string) {
    const stream = await store.inTransaction((tx) => store.readStream(tx, `sandbox-${sandboxId}`));
    const folded = stream.events.map((s) => ({ type: s.event.type, data: s.event.data }) as SandboxEvent).reduce((s, e) => sandboxDecider.evolve(s, e), sandboxDecider.initialState());
    const row = (await repo.sandbox('acme', sandboxId))!;
    return { folded, fromRow: sandboxStateOf(row), streamVersion: stream.version, rowVersion: row.version, types: stream.events.map((s) => s.event.type.split('.').pop()) };
  }

  const until = async (done: () => boolean) => {
    for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('keeps the row at the stream’s state and version through create, start, finish and stop', async () => {
    const sandbox = await service.create(alice, SESSION, 'small');
    let s = await stateAndRow(sandbox.id);
    expect(s.fromRow).toEqual(s.folded);
    expect(s.rowVersion).toBe(s.streamVersion);

    const running = service.exec(alice, sandbox.id, { command: ['/bin/true'] });
    await until(() => finishRun.length === 1);
    s = await stateAndRow(sandbox.id);
    expect(s.fromRow).toEqual(s.folded);
    expect(s.fromRow.running).toMatch(/^[0-9a-f-]{36}$/);
    expect(s.rowVersion).toBe(s.streamVersion);
    finishRun.shift()!();
    const done = await running;
    expect(done).toMatchObject({ status: 'finished', reason: 'exited' });

    s = await stateAndRow(sandbox.id);
    expect(s.fromRow).toEqual(s.folded);
    expect(s.fromRow.running).toBeUndefined();
    expect(s.types).toEqual(['created', 'exec_started', 'exec_finished', 'recorded']);
    expect(s.rowVersion).toBe(s.streamVersion);
    expect(await repo.cpuSecondsSince('acme', new Date(Date.now() - 3_600_000))).toBeCloseTo(0.5);

    await service.stop(alice, sandbox.id);
    s = await stateAndRow(sandbox.id);
    expect(s.fromRow).toEqual(s.folded);
    expect(s.fromRow.status).toBe('stopped');
    expect(s.rowVersion).toBe(s.streamVersion);
    await expect(service.exec(alice, sandbox.id, { command: ['/bin/true'] })).rejects.toMatchObject({ code: 'illegal_state' });
  });

  it('serialises concurrent starts on one sandbox by the row’s lock: one runs, the others are refused (409), the stream stays whole', async () => {
    finishRun = [];
    const sandbox = await service.create(alice, SESSION, 'small');
    const attempts = Array.from({ length: 5 }, () => service.exec(alice, sandbox.id, { command: ['/bin/true'] }).then(
      (v) => v,
      (e: { code: string }) => e.code,
    ));
    await until(() => finishRun.length === 1);
    await new Promise((r) => setTimeout(r, 200)); // the others have been decided by now
    expect(finishRun).toHaveLength(1);
    finishRun.shift()!();
    const results = await Promise.all(attempts);
    expect(results.filter((r) => r === 'conflict')).toHaveLength(4);
    const s = await stateAndRow(sandbox.id);
    expect(s.types).toEqual(['created', 'exec_started', 'exec_finished', 'recorded']);
    expect(s.fromRow).toEqual(s.folded);
    expect(s.rowVersion).toBe(s.streamVersion);
  });
});
