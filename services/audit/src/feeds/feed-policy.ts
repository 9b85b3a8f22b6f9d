/**
 * Delivery decisions of a SIEM feed, as pure functions: how to cut what Kafka handed
 * over into batches, how long to wait before the next attempt, what an HEC answer means,
 * and where the durable cursor goes after an acknowledged batch.
 */

export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxEvents: 500, maxBytes: 512 * 1024 };

/**
 * Cut sized items into consecutive batches of at most `maxEvents` items and `maxBytes`
 * bytes, keeping their order; an item larger than maxBytes goes alone.
 */
export function batches<T>(items: readonly T[], sizeOf: (item: T) => number, limits: BatchLimits): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length >= limits.maxEvents || bytes + size > limits.maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 500, maxMs: 30_000 };
/** A SIEM that refuses the feed's configuration (4xx other than 429) is retried this slowly. */
export const CONFIG_ERROR_RETRY_MS = 60_000;

/**
 * Exponential backoff with full jitter: attempt 1 waits up to base, then 2x, 4x … up to
 * max; `random` in [0, 1). A Retry-After from the SIEM is a floor (capped at 10 minutes).
 */
export function backoffMs(attempt: number, random: number, policy: Backoff = DEFAULT_BACKOFF, retryAfterMs?: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const jittered = Math.max(1, Math.floor(ceiling * random));
  return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, 600_000));
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Why a delivery failed, as shown in the feed's status (never the SIEM's whole answer). */
export type FailureClass = 'network' | 'timeout' | 'tls' | 'throttled' | 'server_error' | 'rejected' | 'bad_answer';

export type HecOutcome = { ok: true } | { ok: false; failure: FailureClass; retryable: boolean; retryAfterMs?: number; detail: string };

/**
 * What an HEC answer means: 200 with `{"code":0}` is the acknowledgement; 429 and 5xx
 * are retried with backoff; any other 4xx is a configuration error (bad token, index,
 * URL), retried slowly without losing anything.
 */
export function hecOutcome(status: number, body: string, retryAfter: string | undefined, now: number): HecOutcome {
  let code: unknown;
  try {
    code = (JSON.parse(body) as { code?: unknown }).code;
  } catch {
    // not JSON: judged by the status alone
  }
  // Nothing of the SIEM's answer is echoed (status, feed errors, logs): only the status and
  // HEC's numeric code. A body may hold anything the remote chose to put there.
  const detail = `HTTP ${status}${typeof code === 'number' && Number.isSafeInteger(code) ? ` code ${code}` : ''}`;
  if (status === 200 && code === 0) return { ok: true };
  if (status === 200) return { ok: false, failure: 'bad_answer', retryable: true, detail };
  if (status === 429) return { ok: false, failure: 'throttled', retryable: true, retryAfterMs: parseRetryAfter(retryAfter, now), detail };
  if (status >= 500) return { ok: false, failure: 'server_error', retryable: true, retryAfterMs: parseRetryAfter(retryAfter, now), detail };
  return { ok: false, failure: 'rejected', retryable: false, detail };
}

/** A network error's class for the feed status. */
export function networkFailure(error: Error & { code?: string }): FailureClass {
  const code = error.code ?? '';
  if (/TIMEOUT|TIMEDOUT/.test(code) || /timed out|timeout/i.test(error.message)) return 'timeout';
  if (/CERT|VERIFY|TLS|SSL|DEPTH_ZERO|SELF_SIGNED|HOSTNAME|ALTNAME/.test(code) || /certificate|tls|ssl/i.test(error.message)) return 'tls';
  return 'network';
}

/**
 * The cursor (next offset to read) of a partition after the SIEM acknowledged a batch:
 * past the last item delivered, or past the whole Kafka batch (`batchEnd`, exclusive)
 * when it was the batch's last, so records of other tenants, aborted records and
 * transaction markers in between are not read again. Never goes back.
 */
export function advanceCursor(current: bigint, lastDelivered: bigint | undefined, batchEnd: bigint | undefined): bigint {
  const next = batchEnd ?? (lastDelivered === undefined ? current : lastDelivered + 1n);
  return next > current ? next : current;
}
