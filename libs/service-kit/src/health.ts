import cluster from 'node:cluster';
import { followerLagMs, type FollowerStatus } from '@palisade/postgres';
import { siblings, type WorkerAnswer } from './siblings';

/** What a worker answers when a sibling gathers the service's readiness (bootstrap registers it: its Platform's). */
export const READINESS_TOPIC = 'palisade:readiness';

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

export interface Readiness {
  ready: boolean;
  checks: Record<string, CheckResult>;
}

/**
 * The readiness a probe gets: this process's (`own`), or in a cluster worker the whole
 * service's, every listening worker's gathered through the primary (a probe through the
 * port reaches one of them at random).
 */
export async function serviceReadiness(own: () => Promise<Readiness>): Promise<Readiness> {
  return cluster.isWorker ? readinessOfWorkers(await siblings().gather(READINESS_TOPIC, null)) : own();
}

/**
 * A service run as workers behind one port is ready when every worker that takes
 * connections is (a probe reaches one of them at random; so do the callers): each check
 * is the worst of the workers', a failing one naming its worker; a worker that gave no
 * readiness is a failing check of its own.
 */
export function readinessOfWorkers(answers: readonly WorkerAnswer[]): Readiness {
  const checks: Record<string, CheckResult> = {};
  const named = (worker: number, reason: string) => (answers.length > 1 ? `worker ${worker}: ${reason}` : reason);
  for (const { worker, value, error } of answers) {
    const checked = (value as Partial<Readiness> | undefined)?.checks;
    if (error !== undefined || typeof checked !== 'object' || checked === null) {
      checks[`worker ${worker}`] = { ok: false, reason: error ?? 'gave no readiness' };
      continue;
    }
    for (const [name, check] of Object.entries(checked)) {
      const before = checks[name];
      if (check.ok) {
        checks[name] = before ?? { ok: true };
        continue;
      }
      const reason = named(worker, check.reason ?? 'failing');
      checks[name] = { ok: false, reason: before && !before.ok ? `${before.reason}; ${reason}` : reason };
    }
  }
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}
