import { followerLagMs, type FollowerStatus } from '@palisade/postgres';

export interface CheckResult {
  ok: boolean;
  reason?: string;
}

/**
 * Readiness of a reader of the event store (the outbox relay, an event tail): ready
 * while it last caught up no longer than `maxLagMs` ago; a standby relay follows
 * nothing and is ready. The reason says how far behind it is and why.
 */
export function followerCheck(status: FollowerStatus, maxLagMs: number, now: number): CheckResult {
  if (status.state === 'standby') return { ok: true };
  const lag = followerLagMs(status, now);
  if (lag <= maxLagMs) return { ok: true };
  const behind = lag === Infinity ? 'has not caught up yet' : `last caught up ${(lag / 1000).toFixed(1)} s ago (bound ${maxLagMs / 1000} s)`;
  return { ok: false, reason: `${status.state}: ${behind}${status.lastError ? `; ${status.lastError}` : ''}` };
}
