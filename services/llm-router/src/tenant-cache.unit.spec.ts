import { TenantCache } from './tenant-cache';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('TenantCache', () => {
  let clock = 0;
  const now = () => clock;
  beforeEach(() => (clock = 1_000));

  it('serves an entry for ttl from when its load began, never longer, and loads again after', async () => {
    const cache = new TenantCache<string>(1000, now);
    let loads = 0;
    const load = async () => `v${++loads}`;
    expect(await cache.get('acme', load)).toBe('v1');
    clock += 999;
    expect(await cache.get('acme', load)).toBe('v1');
    await Promise.resolve();
    clock = 1_000 + 1000;
    // past its ttl it is never served, even while its successor (begun in the background) may be loading
    expect(await cache.get('acme', load)).not.toBe('v1');
  });

  it('concurrent misses share one load', async () => {
    const cache = new TenantCache<string>(1000, now);
    const d = deferred<string>();
    let loads = 0;
    const load = () => (loads++, d.promise);
    const reads = Array.from({ length: 50 }, () => cache.get('acme', load));
    d.resolve('v');
    expect(await Promise.all(reads)).toEqual(Array(50).fill('v'));
    expect(loads).toBe(1);
  });

  it('in the second half of an entry life, a read loads its successor in the background (one load) and still gets the entry at once', async () => {
    const cache = new TenantCache<string>(1000, now);
    const next = deferred<string>();
    let loads = 0;
    const load = () => (++loads === 1 ? Promise.resolve('old') : next.promise);
    await cache.get('acme', load);
    clock += 400;
    expect(await cache.get('acme', load)).toBe('old');
    expect(loads).toBe(1);
    clock += 200;
    expect(await cache.get('acme', load)).toBe('old');
    expect(await cache.get('acme', load)).toBe('old');
    expect(loads).toBe(2);
    next.resolve('new');
    await next.promise;
    await Promise.resolve();
    expect(await cache.get('acme', load)).toBe('new');
    // the successor is served for ttl from when its own load began
    clock = 1_000 + 600 + 999;
    expect(await cache.get('acme', async () => 'newer')).toBe('new');
  });

  it('delete drops the entry at once and discards a load begun before it', async () => {
    const cache = new TenantCache<string>(1000, now);
    const stale = deferred<string>();
    const pending = cache.get('acme', () => stale.promise);
    cache.delete('acme');
    stale.resolve('before the change');
    await pending;
    expect(await cache.get('acme', async () => 'after the change')).toBe('after the change');
    cache.delete('acme');
    expect(await cache.get('acme', async () => 'again')).toBe('again');
  });

  it('a failed load is not kept: the error goes to its readers and the next read loads again; a failed background load keeps the entry until its ttl', async () => {
    const cache = new TenantCache<string>(1000, now);
    await expect(cache.get('acme', async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down');
    expect(await cache.get('acme', async () => 'v')).toBe('v');
    clock += 600;
    expect(await cache.get('acme', async () => Promise.reject(new Error('db down')))).toBe('v');
    await Promise.resolve();
    expect(await cache.get('acme', async () => 'unused')).toBe('v');
  });

  it('with ttl 0 every read loads', async () => {
    const cache = new TenantCache<number>(0, now);
    let loads = 0;
    const load = async () => ++loads;
    await Promise.all([cache.get('acme', load), cache.get('acme', load)]);
    await cache.get('acme', load);
    expect(loads).toBe(3);
  });

  it('tenants do not share entries', async () => {
    const cache = new TenantCache<string>(1000, now);
    expect(await cache.get('acme', async () => 'acme')).toBe('acme');
    expect(await cache.get('globex', async () => 'globex')).toBe('globex');
    expect(await cache.get('acme', async () => 'other')).toBe('acme');
  });
});
