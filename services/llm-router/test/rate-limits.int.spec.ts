import type { Principal } from '@palisade/contracts';
import { createDataSource, pgPoolOf } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import type { DataSource } from 'typeorm';
import { PgRateLimits } from '../src/budgets/rate-limits';
import { rateLimitsMigration } from '../src/budgets/rate-limits.migration';

/**
 * Rate limits on real PostgreSQL, shared by three "router instances" (each its own pool
 * and limiter objects on the same table): however the calls are spread and raced, no
 * window admits more than the limit, a refused call counts nothing, unused tokens are
 * given back, and each tenant, agent and key has its own counters.
 */
describe('rate limits (PostgreSQL, shared by instances)', () => {
  let db: TestSchema;
  const extra: DataSource[] = [];
  let instances: PgRateLimits[];
  const bot = (tenantId: string, id = 'bot', sessionId?: string): Principal => ({ type: 'agent', id, tenantId, ...(sessionId ? { sessionId } : {}) });

  beforeAll(async () => {
    db = await createTestSchema('llmrl');
    const migrator = createDataSource(db.owner, [rateLimitsMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
    for (let i = 0; i < 2; i++) {
      const ds = createDataSource(db.app);
      await ds.initialize();
      extra.push(ds);
    }
    instances = [db.dataSource, ...extra].map((ds) => new PgRateLimits(pgPoolOf(ds), db.schema));
  });
  afterAll(async () => {
    await Promise.all(extra.map((ds) => ds.destroy()));
    await db?.drop();
  });

  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'admitted',
      (e: { code?: string }) => e.code,
    );

  it('admits exactly the limit of requests per minute across three instances racing, then 429 with a retry-after', async () => {
    const settings = { perAgent: { requestsPerMinute: 7 } };
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => outcome(instances[i % 3].admit(bot('t-req'), settings, 10))));
    expect(results.filter((r) => r === 'admitted')).toHaveLength(7);
    expect(results.filter((r) => r === 'rate_limited')).toHaveLength(23);
    const refused = await instances[1].admit(bot('t-req'), settings, 10).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'rate_limited', details: { rateLimit: { scope: 'agent', kind: 'requests', limitPerMinute: 7 } } });
    const { retryAfterSeconds } = (refused as { details: { rateLimit: { retryAfterSeconds: number } } }).details.rateLimit;
    expect(retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(retryAfterSeconds).toBeLessThanOrEqual(60);
    // another agent, another tenant: their own windows
    await expect(instances[0].admit(bot('t-req', 'other-bot'), settings, 10)).resolves.toBeDefined();
    await expect(instances[0].admit(bot('t-req-2'), settings, 10)).resolves.toBeDefined();
  });

  it('counts worst-case tokens, gives back what a call did not use, refuses a worst case larger than the limit outright', async () => {
    const settings = { perAgent: { tokensPerMinute: 1000 } };
    const a = await instances[0].admit(bot('t-tok'), settings, 600);
    // 600 + 600 > 1000: refused, and it counted nothing
    await expect(instances[1].admit(bot('t-tok'), settings, 600)).rejects.toMatchObject({ details: { rateLimit: { kind: 'tokens' } } });
    await a.settle(100);
    // 100 used: 900 left, so 600 fits now (and 300 after it)
    const b = await instances[2].admit(bot('t-tok'), settings, 600);
    await expect(instances[0].admit(bot('t-tok'), settings, 301)).rejects.toMatchObject({ code: 'rate_limited' });
    await expect(instances[0].admit(bot('t-tok'), settings, 300)).resolves.toBeDefined();
    await b.settle(600);
    await expect(instances[0].admit(bot('t-tok', 'big'), settings, 1001)).rejects.toMatchObject({ message: expect.stringContaining('exceeds the agent') });
  });

  it('limits each API key on its own, besides the agent, and applies nothing without limits', async () => {
    const settings = { perAgent: { requestsPerMinute: 100 }, perKey: { requestsPerMinute: 2 } };
    const viaKey = bot('t-key', 'bot', 'apikey-k1');
    expect(await Promise.all([0, 1, 2].map((i) => outcome(instances[i].admit(viaKey, settings, 1))))).toEqual(expect.arrayContaining(['admitted', 'admitted', 'rate_limited']));
    await expect(instances[0].admit(bot('t-key', 'bot', 'apikey-k2'), settings, 1)).resolves.toBeDefined();
    // the same agent without a key: only its agent limit
    await expect(instances[0].admit(bot('t-key'), settings, 1)).resolves.toBeDefined();
    const none = await Promise.all(Array.from({ length: 20 }, () => outcome(instances[0].admit(bot('t-none'), undefined, 1_000_000))));
    expect(none.every((r) => r === 'admitted')).toBe(true);
  });

  it('gives a named agent and a named key their own limits in place of the defaults, on counters of their own', async () => {
    const settings = { perAgent: { requestsPerMinute: 1 }, perKey: { requestsPerMinute: 1 }, agents: { 'batch-bot': { requestsPerMinute: 4 }, free: {} }, keys: { k7: { requestsPerMinute: 3 } } };
    const burst = (who: Principal, n: number) => Promise.all(Array.from({ length: n }, (_, i) => outcome(instances[i % 3].admit(who, settings, 1))));
    const count = (results: unknown[]) => results.filter((r) => r === 'admitted').length;
    expect(count(await burst(bot('t-named'), 5))).toBe(1);
    expect(count(await burst(bot('t-named', 'batch-bot'), 8))).toBe(4);
    await expect(instances[0].admit(bot('t-named', 'batch-bot'), settings, 1)).rejects.toMatchObject({ details: { rateLimit: { scope: 'agent', limitPerMinute: 4 } } });
    // {} names an agent without limits
    expect(count(await burst(bot('t-named', 'free'), 12))).toBe(12);
    // the key k7 (three a minute) used by an agent without a limit of its own: the key's limit holds
    expect(count(await burst(bot('t-named', 'free', 'apikey-k7'), 6))).toBe(3);
    // another key: the default of one
    expect(count(await burst(bot('t-named', 'free', 'apikey-k8'), 3))).toBe(1);
  });
});
