/**
 * What a long-lived reader of the event store (an event tail, the outbox relay) reports,
 * so readiness and fail-closed decisions can tell how far behind it is.
 */
export interface FollowerStatus {
  state: 'stopped' | 'connecting' | 'following' | 'standby' | 'active' | 'failing' | 'disconnected';
  /** When it last had read everything committed (ms since the epoch); absent until it first has. */
  caughtUpAt?: number;
  lastError?: string;
}

/** Milliseconds since the follower last was caught up (Infinity if it never was). */
export function followerLagMs(status: FollowerStatus, now: number): number {
  return status.caughtUpAt === undefined ? Infinity : Math.max(0, now - status.caughtUpAt);
}

/** The next pause between reconnection attempts: doubling from 100 ms up to 5 s. */
export function nextBackoffMs(previousMs: number | undefined): number {
  return previousMs === undefined ? 100 : Math.min(previousMs * 2, 5000);
}
