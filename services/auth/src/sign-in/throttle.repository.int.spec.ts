import { createDataSource } from '@palisade/postgres';
import { createTestSchema, TEST_APP_ROLE, type TestSchema } from '@palisade/testing';
import { signInMigration } from './sign-in.migration';
import { throttleKey, ThrottleRepository, type ThrottleClaim } from './throttle.repository';

/**
 * The lockout's reservation on real PostgreSQL: attempts racing on one account, each in
 * a transaction of its own as the service runs them, are granted at most `threshold`
 * times; the rest see the lock without counting.
 */
describe('ThrottleRepository.reserve (PostgreSQL)', () => {
  let db: TestSchema;
  const repo = new ThrottleRepository();
  const policy = (threshold: number) => ({ threshold, baseSec: 60, maxSec: 900 });

  beforeAll(async () => {
    db = await createTestSchema('auththr');
    const migrator = createDataSource(db.owner, [signInMigration(db.schema, TEST_APP_ROLE)]);
    await migrator.initialize();
    await migrator.runMigrations();
    await migrator.destroy();
  });
  afterAll(() => db.drop());

  const reserve = (claims: ThrottleClaim[], now = new Date()) => db.dataSource.transaction((tx) => repo.reserve(tx as never, claims, now));
  const failuresOf = async (key: string): Promise<number | undefined> =>
    ((await db.dataSource.query(`SELECT failures FROM sign_in_throttle WHERE key = $1`, [key])) as Array<{ failures: number }>)[0]?.failures;

  it('grants at most `threshold` of 30 parallel attempts on one account; the others get the lock and count nothing', async () => {
    const account = { key: throttleKey('account', 'acme', 'erin'), policy: policy(3) };
    const address = { key: throttleKey('address', '10.0.0.1'), policy: policy(50) };
    const results = await Promise.all(Array.from({ length: 30 }, () => reserve([account, address])));
    const granted = results.filter((r) => r.granted);
    expect(granted).toHaveLength(3);
    // Exactly one of them reached the threshold and set the lock, on the account.
    const locking = granted.filter((r) => r.granted && r.lockedNow);
    expect(locking).toHaveLength(1);
    expect(locking[0]).toMatchObject({ lockedNow: { claim: 0, failures: 3 } });
    for (const refused of results.filter((r) => !r.granted)) expect(refused).toEqual({ granted: false, lockedUntil: expect.any(Date) });
    expect(await failuresOf(account.key)).toBe(3);
    // A refusal rolled its claims back: the address counted the three granted attempts only.
    expect(await failuresOf(address.key)).toBe(3);
  });

  it('gives a reservation back when the credential was good, lifting the lock it set', async () => {
    const account = { key: throttleKey('account', 'acme', 'frank'), policy: policy(2) };
    const address = { key: throttleKey('address', '10.0.0.2'), policy: policy(50) };
    const now = new Date();
    expect(await reserve([account, address], now)).toEqual({ granted: true });
    const second = await reserve([account, address], now);
    expect(second).toMatchObject({ granted: true, lockedNow: { claim: 0, failures: 2 } });
    expect(await reserve([account, address], now)).toMatchObject({ granted: false });
    await db.dataSource.transaction((tx) => repo.release(tx as never, [account, address]));
    expect(await failuresOf(account.key)).toBe(1);
    expect(await failuresOf(address.key)).toBe(1);
    expect(await reserve([account, address], now)).toMatchObject({ granted: true, lockedNow: { failures: 2 } });
  });

  it('lifts the lock a good credential’s own reservation set, even when earlier failures reach the threshold', async () => {
    const account = { key: throttleKey('account', 'acme', 'hugo'), policy: { threshold: 2, baseSec: 1, maxSec: 900 } };
    const t0 = new Date('2026-01-01T00:00:00Z');
    await reserve([account], t0);
    await reserve([account], t0); // two failures: locked until 00:00:01
    const later = new Date('2026-01-01T00:00:05Z');
    const good = await reserve([account], later);
    expect(good).toMatchObject({ granted: true, lockedNow: { claim: 0, failures: 3 } });
    if (!good.granted || !good.lockedNow) throw new Error('expected a lock');
    await db.dataSource.transaction((tx) => repo.release(tx as never, [account], good.lockedNow));
    expect(await failuresOf(account.key)).toBe(2);
    expect(await db.dataSource.transaction((tx) => repo.lockedUntil(tx as never, [account.key], later))).toBeUndefined();
  });

  it('counts again once the lock has run out, with a longer lock', async () => {
    const account = { key: throttleKey('account', 'acme', 'gina'), policy: { threshold: 1, baseSec: 1, maxSec: 900 } };
    const t0 = new Date('2026-01-01T00:00:00Z');
    expect(await reserve([account], t0)).toMatchObject({ granted: true, lockedNow: { failures: 1, lockedUntil: new Date('2026-01-01T00:00:01Z') } });
    expect(await reserve([account], new Date('2026-01-01T00:00:00.500Z'))).toEqual({ granted: false, lockedUntil: new Date('2026-01-01T00:00:01Z') });
    expect(await reserve([account], new Date('2026-01-01T00:00:02Z'))).toMatchObject({ granted: true, lockedNow: { failures: 2, lockedUntil: new Date('2026-01-01T00:00:04Z') } });
  });
});
