import { randomUUID } from 'node:crypto';
import { createDataSource } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { teamsMigration } from '../teams/teams.migration';
import { usersMigration } from '../users/users.migration';
import { sessionsMigration } from './sessions.migration';
import { SessionsRepository, type RefreshOutcome } from './sessions.repository';
import { newRefreshToken } from './token-issuer';

/**
 * Refresh-token rotation on real PostgreSQL, outside any transaction: rotation on use,
 * reuse detection, dead sessions, and two exchanges of one token racing each other.
 */
describe('SessionsRepository.rotate (PostgreSQL)', () => {
  let db: TestSchema;
  const repo = new SessionsRepository();

  beforeAll(async () => {
    db = await createTestSchema('authsess');
    const migrator = createDataSource(db.owner, [usersMigration(db.schema, TEST_APP_ROLE), sessionsMigration(db.schema, TEST_APP_ROLE), teamsMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    await db.dataSource.query(`INSERT INTO users (tenant_id, id, username, status, roles) VALUES ('acme', 'u-1', 'ann', 'active', '{admin}'), ('acme', 'u-2', 'bob', 'disabled', '{}')`);
  });
  afterAll(() => db.drop());

  /** A session of u-1 (unless told otherwise) and its first refresh token's hash. */
  async function openSession(userId = 'u-1'): Promise<{ sessionId: string; hash: Buffer }> {
    const sessionId = randomUUID();
    const first = newRefreshToken();
    await db.dataSource.transaction((tx) =>
      repo.open(
        tx as never,
        { sessionId, tenantId: 'acme', userId, audience: ['palisade:policy'], mfa: false, createdAt: new Date(), expiresAt: new Date(Date.now() + 3600_000) },
        first.hash,
      ),
    );
    return { sessionId, hash: first.hash };
  }

  const tokensOf = async (sessionId: string): Promise<Array<{ used: boolean }>> =>
    db.dataSource.query(`SELECT used_at IS NOT NULL AS used FROM refresh_tokens WHERE session_id = $1 ORDER BY issued_at`, [sessionId]);

  it('rotates on use, reports the reuse of an exchanged token, and refuses unknown tokens and dead sessions', async () => {
    const { sessionId, hash } = await openSession();
    const second = newRefreshToken();
    expect(await repo.rotate(db.dataSource, hash, second.hash)).toEqual({
      kind: 'rotated',
      session: { sessionId, tenantId: 'acme', userId: 'u-1', audience: ['palisade:policy'], mfa: false, roles: ['admin'], teams: [] },
    });
    const third = newRefreshToken();
    expect(await repo.rotate(db.dataSource, second.hash, third.hash)).toMatchObject({ kind: 'rotated', session: { sessionId } });
    // The first token again: a copy was used, the caller revokes the family.
    expect(await repo.rotate(db.dataSource, hash, newRefreshToken().hash)).toEqual({ kind: 'reused', sessionId, tenantId: 'acme', userId: 'u-1' });
    expect(await repo.rotate(db.dataSource, newRefreshToken().hash, newRefreshToken().hash)).toEqual({ kind: 'invalid' });

    // Once the session ended, even its latest token buys nothing, and no token is added.
    await db.dataSource.query(`UPDATE sessions SET ended_at = now() WHERE id = $1`, [sessionId]);
    expect(await repo.rotate(db.dataSource, third.hash, newRefreshToken().hash)).toEqual({ kind: 'invalid' });
    expect(await tokensOf(sessionId)).toHaveLength(3);

    // A disabled user's session is not live either.
    const disabled = await openSession('u-2');
    expect((await repo.rotate(db.dataSource, disabled.hash, newRefreshToken().hash)).kind).not.toBe('rotated');
    expect(await tokensOf(disabled.sessionId)).toHaveLength(1);
  });

  it('two or more exchanges of one token racing: exactly one rotates, every other reports reuse', async () => {
    const { sessionId, hash } = await openSession();
    // Hold the token's row lock so that every exchange is in flight, waiting on it, before any can win.
    const blocker = db.dataSource.createQueryRunner();
    await blocker.connect();
    await blocker.startTransaction();
    await blocker.query(`SELECT 1 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE`, [hash]);
    const blockerPid: number = (await blocker.query(`SELECT pg_backend_pid() AS pid`))[0].pid;
    const racing: Array<Promise<RefreshOutcome>> = Array.from({ length: 3 }, () => repo.rotate(db.dataSource, hash, newRefreshToken().hash));
    // Until all three wait, on the blocker or on each other (tuple lock queue).
    for (;;) {
      const [{ waiting }] = await db.dataSource.query(
        `WITH RECURSIVE w(pid) AS (
           SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))
           UNION SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY (pg_blocking_pids(a.pid))
         ) SELECT count(*)::int AS waiting FROM w`,
        [blockerPid],
      );
      if (waiting >= 3) break;
    }
    await blocker.commitTransaction();
    await blocker.release();
    const outcomes = await Promise.all(racing);
    expect(outcomes.filter((o) => o.kind === 'rotated')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'reused')).toEqual([
      { kind: 'reused', sessionId, tenantId: 'acme', userId: 'u-1' },
      { kind: 'reused', sessionId, tenantId: 'acme', userId: 'u-1' },
    ]);
    // One successor token, no more.
    expect(await tokensOf(sessionId)).toEqual([{ used: true }, { used: false }]);
  });

  it('many sessions, each token exchanged twice at once: one winner per session', async () => {
    const sessions = await Promise.all(Array.from({ length: 12 }, () => openSession()));
    const outcomes = await Promise.all(sessions.flatMap((s) => [0, 1].map(() => repo.rotate(db.dataSource, s.hash, newRefreshToken().hash).then((o) => ({ s, o })))));
    for (const s of sessions) {
      const mine = outcomes.filter((x) => x.s === s).map((x) => x.o.kind);
      expect(mine.sort()).toEqual(['reused', 'rotated']);
      expect(await tokensOf(s.sessionId)).toHaveLength(2);
    }
  });
});
