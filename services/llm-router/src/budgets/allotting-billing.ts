import { randomUUID } from 'node:crypto';
import type { AllotmentPort, AllotResult, BillingPort, ReserveRequest, ReserveResult, SettleRequest } from './billing.port';

export interface AllottingBillingOptions {
  /** What an allotment asks for: this many times the asking request's worst case (billing grants it, or near the limit that request's alone). */
  multiple: number;
  /**
   * How long an allotment outlives the deadline of the request that asked for it. It serves a request only
   * while that request's deadline is at least a third of this before the allotment's expiry (so it serves
   * new requests for about two thirds of it, and every settle has that third to reach billing).
   */
  ttlMs: number;
  /** An allotment with nothing in flight that served nothing for this long is returned (its remainder released). */
  idleMs: number;
  /**
   * A scope's next allotment is asked ahead, while its current one still serves, once a request served
   * leaves it room for fewer than this many of that request's worst case (0, the default: only when a
   * request does not fit), so that in steady use no request waits for billing. Only behind an allotment
   * granted whole: near a limit billing grants less, and nothing is asked ahead there.
   */
  refillBelow?: number;
  now?: () => number;
  newId?: () => string;
  /** Told when returning an allotment failed (billing expires it at its TTL). */
  onReturnFailed?: (allotmentId: string, error: unknown) => void;
}

/** Rounds of asking (another request's allotment taken or too small, asked again) before a request reserves on its own, as without allotments. */
const MAX_ROUNDS = 3;
/**
 * Requests of a scope waiting for its allotment ask the next one to cover them too, up to this many times
 * `multiple` (under load one allotment of `multiple` would serve only `multiple` of them, the rest asking
 * again, round after round): billing still grants only the asking request's worst case near the limit.
 */
const DEMAND_CAP = 8;
/** Billing's longest hold. */
const MAX_TTL_MS = 3_600_000;

/** An allotment as this instance serves it. All amounts in micro-USD. */
interface Allotment {
  id: string;
  scope: string;
  tenantId: string;
  granted: number;
  /** The worst case of every request served and not yet settled or released, plus the actual cost of those settled. */
  committed: number;
  /** Requests served whose settle (or release) has not ended yet. */
  inFlight: number;
  /** Billing expires it then (this instance's clock, from when it asked: billing counts from when it received). */
  expiresAt: number;
  /** Serves no request whose deadline is later than this. */
  servesUntil: number;
  lastServed: number;
  /** Serves no more requests; returned once nothing is in flight. */
  retired: boolean;
  returned: boolean;
  /** Granted as much as asked (billing was not near a limit). */
  whole: boolean;
  /** Its successor was asked ahead. */
  refilled: boolean;
}

type Served = { allotment: Allotment; worst: number };
/** A request of `scope` that found no allotment with room for it, until it is served or answered otherwise. */
type Hunger = { scope: string; fed: boolean };
type Asked = { result: AllotResult; minAmountMicros: number };

/**
 * Budget allotments (the router's side): the billing port seen by the completions service, serving most
 * reservations in memory with no hop to billing. For a budget scope (tenant, agent, team, user: what
 * billing's reserve charges) it holds one allotment, a hold billing granted of `multiple` × a request's
 * worst case, and serves following requests of that scope from it while it has room for their worst case
 * besides every request it served and has not settled (so the allotment always covers each one's actual,
 * and billing never posts beyond it: billing's own hold is the bound). Each request is settled against the
 * allotment (`allotmentId`: billing posts its cost and lowers the allotment by as much, a usage line of its
 * own); a request that failed before using the provider gives its worst case back here, with no hop.
 *
 * Requests of a scope with no allotment that fits wait for the one allotment asked for it (coalesced), never
 * one each. Refused: the same refusal as a reservation (429) for every waiter whose worst case is at least
 * the asker's; the others ask again. Billing unreachable: the error (503) for all of them. After
 * `MAX_ROUNDS` a request reserves on its own, as without allotments (near the limit billing grants only
 * the asking request's worst case, so allotments stay one request each there).
 *
 * With `refillBelow`, the next allotment is asked ahead while the current one still has room for a few
 * requests, so that in steady use no request waits for it.
 *
 * An allotment serves no request whose deadline is not a third of `ttlMs` before its expiry, and is retired
 * then, when it has no room for a request, or when idle for `idleMs`; once its requests have settled it is
 * returned (billing releases the remainder). A router that dies leaves its allotments to billing's
 * sweeper, at their TTL, as it leaves its holds.
 */
export class AllottingBilling implements BillingPort {
  private readonly current = new Map<string, Allotment>();
  private readonly asking = new Map<string, Promise<Asked>>();
  /** Requests of a scope that found no allotment with room for them and have not been answered yet (the next allotment asked covers them too). */
  private readonly hungry = new Map<string, number>();
  private readonly served = new Map<string, Served>();
  /** Every allotment not yet returned or forgotten (current and retired). */
  private readonly live = new Set<Allotment>();
  private readonly returns = new Set<Promise<void>>();
  private readonly now: () => number;
  private readonly newId: () => string;
  private closed = false;

  constructor(
    private readonly billing: AllotmentPort & { close?(): Promise<void> },
    private readonly options: AllottingBillingOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.newId = options.newId ?? (() => `al-${randomUUID()}`);
  }

  async reserve(r: ReserveRequest): Promise<ReserveResult> {
    const scope = scopeOf(r);
    const a = this.current.get(scope);
    const deadline = Date.parse(r.expiresAt);
    // the fast path: served from the scope's allotment, no hop
    if (a && this.take(a, r, deadline)) {
      this.refillAhead(a, r, deadline);
      return this.heldFrom(r);
    }
    this.hungry.set(scope, (this.hungry.get(scope) ?? 0) + 1);
    const hunger: Hunger = { scope, fed: false };
    try {
      const result = await this.reserveWaiting(r, deadline, hunger);
      return result.status === 'held' ? this.heldFrom(r) : result;
    } finally {
      this.feed(hunger);
    }
  }

  /** Held: with the allotment it was served from (named in the request's usage event, so billing's metering settles against it too). */
  private heldFrom(r: ReserveRequest): ReserveResult {
    const served = this.served.get(r.requestId);
    return served ? { status: 'held', allotmentId: served.allotment.id } : { status: 'held' };
  }

  /** A hungry request served, refused or failed: no longer counted (at once when served, for the next allotment's size). */
  private feed(hunger: Hunger): void {
    if (hunger.fed) return;
    hunger.fed = true;
    const n = (this.hungry.get(hunger.scope) ?? 1) - 1;
    if (n > 0) this.hungry.set(hunger.scope, n);
    else this.hungry.delete(hunger.scope);
  }

  /**
   * Asks `a`'s successor in the background when `r`, just served from it, left it room for fewer than
   * `refillBelow` of its worst case. Requests that find no room meanwhile wait for it as for any ask (its
   * refusal or failure is theirs); requests that fit are served from `a` until the successor replaces it.
   */
  private refillAhead(a: Allotment, r: ReserveRequest, deadline: number): void {
    const below = this.options.refillBelow ?? 0;
    if (below <= 0 || !a.whole || a.refilled || this.closed || this.asking.has(a.scope)) return;
    if (a.granted - a.committed >= below * r.amountMicros) return;
    a.refilled = true;
    const asked = this.ask({ scope: a.scope, fed: true }, r, deadline, false);
    this.asking.set(a.scope, asked);
    // no request of its own waits for it: a failure is only its waiters' (and billing was given the id back)
    asked.finally(() => this.asking.delete(a.scope)).catch(() => undefined);
  }

  /** A request no allotment of its scope has room for: waits for the one asked, or asks one itself. */
  private async reserveWaiting(r: ReserveRequest, deadline: number, hunger: Hunger): Promise<ReserveResult> {
    const { scope } = hunger;
    for (let round = 0; round < MAX_ROUNDS && !this.closed; round++) {
      const a = this.current.get(scope);
      if (a) {
        if (this.take(a, r, deadline, hunger)) return { status: 'held' };
        this.retire(a);
      }
      const waiting = this.asking.get(scope);
      if (waiting) {
        const { result, minAmountMicros } = await waiting;
        // the asker's refusal is ours when we need at least as much; otherwise we may fit where it did not
        if (result.status === 'refused' && r.amountMicros >= minAmountMicros) return result;
        continue;
      }
      if (deadline + this.margin() > this.now() + MAX_TTL_MS) break;
      const asked = this.ask(hunger, r, deadline);
      this.asking.set(scope, asked);
      const { result } = await asked.finally(() => this.asking.delete(scope));
      if (result.status === 'refused') return result;
      // served by `ask`, before any waiter could take the room it asked for
      return { status: 'held' };
    }
    // (the allotment the last round waited for may have room)
    const last = this.current.get(scope);
    if (last && this.take(last, r, deadline, hunger)) return { status: 'held' };
    // its own hold, as without allotments (its settle or release, unknown here, goes to billing as it is)
    return this.billing.reserve(r);
  }

  /** Against the allotment the request was served from (its worst case replaced by its actual cost), or its own hold. */
  async settle(s: SettleRequest): Promise<void> {
    const served = this.served.get(s.requestId);
    if (!served) return this.billing.settle(s);
    this.served.delete(s.requestId);
    const a = served.allotment;
    a.committed += s.amountMicros - served.worst;
    try {
      await this.billing.settle({ ...s, allotmentId: a.id });
    } finally {
      a.inFlight--;
      this.returnIfDone(a);
    }
  }

  /** A request served from an allotment gives its worst case back to it, with no hop; one with its own hold releases it. */
  async release(request: { tenantId: string; requestId: string }): Promise<void> {
    const served = this.served.get(request.requestId);
    if (!served) return this.billing.release(request);
    this.served.delete(request.requestId);
    const a = served.allotment;
    a.committed -= served.worst;
    a.inFlight--;
    this.returnIfDone(a);
  }

  /**
   * Retires allotments past their serving time or idle, returns those retired with nothing in flight, and
   * forgets those past their expiry (billing has released them). Called by the timer of `start()`.
   */
  tick(): void {
    const now = this.now();
    for (const a of this.live) {
      if (now >= a.expiresAt) {
        // (a request of it settled after this still names it: billing settles it late, on its accounts)
        this.live.delete(a);
        if (this.current.get(a.scope) === a) this.current.delete(a.scope);
        continue;
      }
      if (!a.retired && (now >= a.servesUntil || (a.inFlight === 0 && now - a.lastServed >= this.options.idleMs))) this.retire(a);
    }
  }

  private timer: NodeJS.Timeout | undefined;

  /** Ticks every half of `idleMs` (at most every second), unref'd. */
  start(): this {
    this.timer ??= setInterval(() => this.tick(), Math.max(10, Math.min(1000, this.options.idleMs / 2)));
    this.timer.unref();
    return this;
  }

  /**
   * On shutdown (after the requests' settles went out): serves nothing more, returns every allotment with
   * nothing in flight (one with a request still out is left to its settle, or to billing's TTL), then closes
   * the port under it.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const a of [...this.live]) this.retire(a);
    await Promise.all(this.returns);
    await this.billing.close?.();
  }

  /** What this instance holds in allotments now (for tests and metrics): per allotment, granted, committed, in flight. */
  allotments(): Array<{ id: string; granted: number; committed: number; inFlight: number; retired: boolean }> {
    return [...this.live].map((a) => ({ id: a.id, granted: a.granted, committed: a.committed, inFlight: a.inFlight, retired: a.retired }));
  }

  private margin(): number {
    return Math.ceil(this.options.ttlMs / 3);
  }

  /** Serves `r` from `a` if `a` still serves and has room for its worst case besides everything else it serves. */
  private take(a: Allotment, r: ReserveRequest, deadline: number, hunger?: Hunger): boolean {
    if (a.retired || deadline > a.servesUntil || a.committed + r.amountMicros > a.granted) return false;
    if (hunger) this.feed(hunger);
    a.committed += r.amountMicros;
    a.inFlight++;
    a.lastServed = this.now();
    this.served.set(r.requestId, { allotment: a, worst: r.amountMicros });
    return true;
  }

  /**
   * Asks billing for an allotment for `r`'s scope; when granted, makes it the scope's and (unless asked
   * ahead, `serve` false: `r` was served already) serves `r` from it first (it covers `r` by construction).
   */
  private async ask(hunger: Hunger, r: ReserveRequest, deadline: number, serve = true): Promise<Asked> {
    const { scope } = hunger;
    // the multiple, or as many worst cases as requests of the scope wait for an allotment (at most DEMAND_CAP × the multiple)
    const demand = Math.min(this.hungry.get(scope) ?? 1, DEMAND_CAP * this.options.multiple);
    const asked = Math.max(r.amountMicros, Math.ceil(Math.max(this.options.multiple, demand) * r.amountMicros));
    const sentAt = this.now();
    const expiresAt = Math.min(deadline + this.options.ttlMs, sentAt + MAX_TTL_MS);
    const id = this.newId();
    const result = await this.billing
      .allot({
        tenantId: r.tenantId,
        allotmentId: id,
        agentId: r.agentId,
        ...(r.userId ? { userId: r.userId } : {}),
        ...(r.teamId ? { teamId: r.teamId } : {}),
        amountMicros: asked,
        minAmountMicros: r.amountMicros,
        expiresAt: new Date(expiresAt).toISOString(),
      })
      .catch((error: unknown) => {
        // billing may have granted it and the answer was lost: given back at once (or, if that is lost too, at its TTL)
        void this.billing.release({ tenantId: r.tenantId, requestId: id }).catch(() => undefined);
        throw error;
      });
    if (result.status === 'granted') {
      const a: Allotment = {
        id,
        scope,
        tenantId: r.tenantId,
        granted: result.amountMicros,
        committed: 0,
        inFlight: 0,
        expiresAt,
        servesUntil: expiresAt - this.margin(),
        lastServed: this.now(),
        retired: false,
        returned: false,
        whole: result.amountMicros >= asked,
        refilled: false,
      };
      this.live.add(a);
      const before = this.current.get(scope);
      if (before) this.retire(before);
      this.current.set(scope, a);
      // asked ahead and granted after a shutdown began: given back at once
      if (!serve && this.closed) this.retire(a);
      if (serve && !this.take(a, r, deadline, hunger)) {
        // cannot happen (granted ≥ its worst case, its deadline within the serving time): never serve it unbudgeted
        this.retire(a);
        throw new Error('an allotment granted for a request did not cover it');
      }
    }
    return { result, minAmountMicros: r.amountMicros };
  }

  private retire(a: Allotment): void {
    a.retired = true;
    if (this.current.get(a.scope) === a) this.current.delete(a.scope);
    this.returnIfDone(a);
  }

  /** A retired allotment with nothing in flight: its remainder released in billing (a failure is left to billing's TTL). */
  private returnIfDone(a: Allotment): void {
    if (!a.retired || a.inFlight > 0 || a.returned) return;
    a.returned = true;
    this.live.delete(a);
    const returned = this.billing
      .release({ tenantId: a.tenantId, requestId: a.id })
      .catch((error: unknown) => this.options.onReturnFailed?.(a.id, error))
      .finally(() => this.returns.delete(returned));
    this.returns.add(returned);
  }
}

/** The budget scope of a request: what billing's reserve charges (tenant, agent, team, user). */
function scopeOf(r: ReserveRequest): string {
  return `${r.tenantId}\u0000${r.agentId}\u0000${r.teamId ?? ''}\u0000${r.userId ?? ''}`;
}
