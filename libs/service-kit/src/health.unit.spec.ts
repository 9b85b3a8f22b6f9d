import { loadServiceConfig } from './config';
import { followerCheck } from './health';

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
