import { loadServiceConfig } from './config';
import { followerCheck, readinessOfWorkers } from './health';

describe('followerCheck: readiness reports the lag of the relay and event tails', () => {
  const now = 1_000_000;

  it('is ready while the follower caught up within the bound', () => {
    expect(followerCheck({ state: 'following', caughtUpAt: now - 4999 }, 5000, now)).toEqual({ ok: true });
    expect(followerCheck({ state: 'active', caughtUpAt: now }, 5000, now)).toEqual({ ok: true });
  });

  it('is not ready once it is behind by more than the bound, saying how far and why', () => {
    expect(followerCheck({ state: 'disconnected', caughtUpAt: now - 7200, lastError: 'terminating connection due to administrator command' }, 5000, now)).toEqual({
      ok: false,
      reason: 'disconnected: last caught up 7.2 s ago (bound 5 s); terminating connection due to administrator command',
    });
    // Connected but still working through a backlog is behind as well.
    expect(followerCheck({ state: 'active', caughtUpAt: now - 6000 }, 5000, now).ok).toBe(false);
  });

  it('is not ready before it first caught up; a standby relay follows nothing and is ready', () => {
    expect(followerCheck({ state: 'connecting' }, 5000, now)).toEqual({ ok: false, reason: 'connecting: has not caught up yet' });
    expect(followerCheck({ state: 'standby' }, 5000, now)).toEqual({ ok: true });
  });

  it('takes the bound from EVENT_LAG_MAX_MS, 5 s by default, validated at boot', () => {
    const base = { NATS_URL: 'tls://127.0.0.1:4223', PALISADE_PKI_DIR: '/tmp/pki' };
    expect(loadServiceConfig('policy', base).EVENT_LAG_MAX_MS).toBe(5000);
    expect(loadServiceConfig('policy', { ...base, EVENT_LAG_MAX_MS: '800' }).EVENT_LAG_MAX_MS).toBe(800);
    expect(() => loadServiceConfig('policy', { ...base, EVENT_LAG_MAX_MS: 'soon' })).toThrow(/EVENT_LAG_MAX_MS/);
  });
});

describe('readinessOfWorkers: a service run as workers is ready only when every worker is', () => {
  const ready = { ready: true, checks: { postgres: { ok: true }, nats: { ok: true } } };

  it('is one worker\'s readiness as it is, alone', () => {
    expect(readinessOfWorkers([{ worker: 0, value: ready }])).toEqual(ready);
    expect(readinessOfWorkers([{ worker: 0, value: { ready: false, checks: { postgres: { ok: false, reason: 'timeout' } } } }])).toEqual({ ready: false, checks: { postgres: { ok: false, reason: 'timeout' } } });
  });

  it('fails a check when any worker fails it, naming each failing worker; a worker without an answer fails on its own', () => {
    const down = (reason: string) => ({ ready: false, checks: { postgres: { ok: false, reason }, nats: { ok: true } } });
    expect(readinessOfWorkers([{ worker: 1, value: ready }, { worker: 2, value: down('connection refused') }])).toEqual({
      ready: false,
      checks: { postgres: { ok: false, reason: 'worker 2: connection refused' }, nats: { ok: true } },
    });
    expect(readinessOfWorkers([{ worker: 1, value: down('a') }, { worker: 2, value: down('b') }, { worker: 3, error: 'worker 3 did not answer within 2000 ms' }])).toEqual({
      ready: false,
      checks: { postgres: { ok: false, reason: 'worker 1: a; worker 2: b' }, nats: { ok: true }, 'worker 3': { ok: false, reason: 'worker 3 did not answer within 2000 ms' } },
    });
    expect(readinessOfWorkers([{ worker: 1, value: ready }, { worker: 2, value: ready }])).toEqual(ready);
  });
});
