import { PalisadeError, type Principal } from '@palisade/contracts';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';

/** Per minute, for one agent or one API key; absent: no limit of that kind. */
export interface RateLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

/**
 * A tenant's rate limits (router settings): for each agent (a person calling directly
 * counts as agent `user:<id>`), and for each API key; `agents` and `keys` name the ones
 * whose limits differ from those defaults.
 */
export interface RateLimitSettings {
  perAgent?: RateLimits;
  perKey?: RateLimits;
  /** By agent id (`user:<id>` for a person): replaces `perAgent` whole for that agent. */
  agents?: Record<string, RateLimits>;
  /** By API key id: replaces `perKey` whole for that key. */
  keys?: Record<string, RateLimits>;
}

/** What an admitted call holds: its tokens are given back down to what it really used. */
export interface RateTicket {
  settle(usedTokens: number): Promise<void>;
}

export interface RateLimiterPort {
  /**
   * Counts one request and `tokens` (the call's worst case) against every limit that
   * applies, or refuses: `rate_limited` with `details.rateLimit` (scope, kind, limit,
   * `retryAfterSeconds`), nothing counted. The store unreachable: `unavailable`.
   */
  admit(principal: Principal, settings: RateLimitSettings | undefined, tokens: number): Promise<RateTicket>;
}

export const RATE_LIMIT_TABLE = 'rate_limits';
const WINDOW_SECONDS = 60;
const NO_TICKET: RateTicket = { settle: async () => undefined };

/** The agent's key (`user:<id>` for a person) and, for a caller that came with an API key, that key's id (auth's session `apikey-<key id>`). */
export function subjectsOf(principal: Principal): { agent: string; key?: string } {
  const agent = principal.type === 'agent' ? principal.id : `user:${principal.id}`;
  const key = principal.sessionId?.startsWith('apikey-') ? principal.sessionId.slice('apikey-'.length) : undefined;
  return key ? { agent, key } : { agent };
}

/**
 * The limits that apply to one call's agent and key: a named entry replaces the tenant's
 * default whole (so `{}` names an agent or key without limits, and a limit the entry
 * leaves out is not inherited); only the settings' own entries count, never a name an
 * object inherits ("constructor").
 */
export function limitsOf(settings: RateLimitSettings | undefined, subjects: { agent: string; key?: string }): { agent?: RateLimits; key?: RateLimits } {
  const named = (entries: Record<string, RateLimits> | undefined, id: string) => (entries && Object.hasOwn(entries, id) ? entries[id] : undefined);
  return {
    agent: named(settings?.agents, subjects.agent) ?? settings?.perAgent,
    key: subjects.key === undefined ? undefined : (named(settings?.keys, subjects.key) ?? settings?.perKey),
  };
}

interface Counter {
  scope: 'agent' | 'key';
  kind: 'requests' | 'tokens';
  limit: number;
  key: string;
  points: number;
}

/**
 * Rate limits shared by every router instance: `rate-limiter-flexible`'s PostgreSQL
 * counters (one atomic upsert per counter, fixed one-minute windows) in the router's own
 * table. A call is counted once per request and by its worst-case tokens; what it did
 * not use is given back when it is settled. A refused call counts nothing (what was
 * taken for it is given back), so only admitted calls fill a window. Limits may differ
 * per tenant: one limiter per limit value, all on the same rows.
 */
export class PgRateLimits implements RateLimiterPort {
  private readonly limiters = new Map<number, RateLimiterPostgres>();

  constructor(
    /** The router's `pg` pool (the application role). */
    private readonly pool: unknown,
    private readonly schema: string,
  ) {}

  async admit(principal: Principal, settings: RateLimitSettings | undefined, tokens: number): Promise<RateTicket> {
    const counters = this.countersOf(principal, settings, Math.max(0, Math.ceil(tokens)));
    if (counters.length === 0) return NO_TICKET;
    const tooBig = counters.find((c) => c.points > c.limit);
    if (tooBig) throw refusal(tooBig, WINDOW_SECONDS * 1000, true);
    const results = await Promise.allSettled(counters.map((c) => this.limiter(c.limit).consume(c.key, c.points)));
    const refused = results.findIndex((r) => r.status === 'rejected');
    if (refused >= 0) {
      // nothing counts for a refused call: give back what was taken (also by the counter that refused)
      await Promise.allSettled(counters.map((c) => this.limiter(c.limit).reward(c.key, c.points)));
      const reason = (results[refused] as PromiseRejectedResult).reason as unknown;
      if (!(reason instanceof RateLimiterRes)) throw new PalisadeError('unavailable', 'the rate limits cannot be checked: refused');
      throw refusal(counters[refused], reason.msBeforeNext, false);
    }
    const tokenCounters = counters.filter((c) => c.kind === 'tokens');
    let settled = false;
    return {
      settle: async (usedTokens: number) => {
        // once: a call's failure paths may each say it used nothing
        if (settled) return;
        settled = true;
        await Promise.allSettled(tokenCounters.map((c) => (c.points > usedTokens ? this.limiter(c.limit).reward(c.key, c.points - Math.max(0, usedTokens)) : undefined)));
      },
    };
  }

  private countersOf(principal: Principal, settings: RateLimitSettings | undefined, tokens: number): Counter[] {
    const subjects = subjectsOf(principal);
    const applying = limitsOf(settings, subjects);
    const counters: Counter[] = [];
    const add = (scope: Counter['scope'], id: string, limits: RateLimits | undefined) => {
      const base = `${principal.tenantId}/${scope}/${id}`;
      if (limits?.requestsPerMinute) counters.push({ scope, kind: 'requests', limit: limits.requestsPerMinute, key: `${base}/requests`, points: 1 });
      if (limits?.tokensPerMinute) counters.push({ scope, kind: 'tokens', limit: limits.tokensPerMinute, key: `${base}/tokens`, points: tokens });
    };
    add('agent', subjects.agent, applying.agent);
    if (subjects.key) add('key', subjects.key, applying.key);
    return counters;
  }

  private limiter(points: number): RateLimiterPostgres {
    let limiter = this.limiters.get(points);
    if (!limiter) {
      limiter = new RateLimiterPostgres({ storeClient: this.pool, storeType: 'pool', schemaName: this.schema, tableName: RATE_LIMIT_TABLE, tableCreated: true, clearExpiredByTimeout: false, keyPrefix: 'llm', points, duration: WINDOW_SECONDS });
      this.limiters.set(points, limiter);
    }
    return limiter;
  }
}

function refusal(counter: Counter, msBeforeNext: number, never: boolean): PalisadeError {
  const retryAfterSeconds = Math.max(1, Math.ceil(msBeforeNext / 1000));
  const what = counter.kind === 'requests' ? 'requests' : 'tokens';
  const message = never
    ? `the request's worst case (${counter.points} tokens) exceeds the ${counter.scope}'s limit of ${counter.limit} tokens per minute: lower max_tokens`
    : `the ${counter.scope}'s rate limit of ${counter.limit} ${what} per minute is reached: retry after ${retryAfterSeconds} s`;
  return new PalisadeError('rate_limited', message, { rateLimit: { scope: counter.scope, kind: counter.kind, limitPerMinute: counter.limit, retryAfterSeconds } });
}
