import { PalisadeError, type EventFactoryContext, type ServiceName } from '@palisade/contracts';
import { envelopeOf } from '@palisade/eventsourcing';
import { LRUCache } from 'lru-cache';
import { periodOf } from '../budgets/budgets.decider';
import type { Level } from '../budgets/budgets.events';
import { Batcher, hashOf } from './ledger.batcher';
import {
  accountKey,
  compareAccounts,
  decide,
  type Account,
  type Hold,
  type LedgerAnswer,
  type LedgerCommand,
  type ReleaseAnswer,
  type ReserveAnswer,
  type ReserveCommand,
  type SettleAnswer,
  type SettleCommand,
} from './ledger.decider';
import type { UsageQuantity } from './ledger.events';
import { decideAgain, holdKey, type BudgetRow, type LedgerRepository, type LedgerTransaction, type PeriodToOpen, type StreamEvent, type UsageLine } from './ledger.repository';

export interface LedgerServiceDependencies {
  repo: Pick<LedgerRepository, 'inTransaction' | 'budgetsOf' | 'openPeriods' | 'lock' | 'write' | 'expiredHolds' | 'currentAccounts'>;
  eventContext: EventFactoryContext;
  now?: () => Date;
  /** Batches that may commit at once. */
  lanes?: number;
  maxBatch?: number;
  /**
   * How long which budgets exist (and their period and time zone) is remembered, in ms; 0
   * reads them for every batch. Limits, hard/soft and thresholds are read from the locked
   * period row, so they apply at once whatever this is; a budget created or removed on
   * another instance applies within this time (this instance's own changes: `forgetBudgets`).
   */
  budgetCacheMs?: number;
}

export interface ReserveInput {
  tenantId: string;
  requestId: string;
  agentId: string;
  teamId?: string | null;
  /** The user the agent acts for (its token's `act.sub`): charged too when that user has a budget. */
  userId?: string | null;
  amountMicros: string;
  /** An allotment (`requestId` its id): at least this much, or refused; `amountMicros` up to half the least headroom of its hard levels (ledger.decider.ts, `ReserveCommand.minAmount`). */
  minAmountMicros?: string;
  ttlMs: number;
}
export interface SettleInput {
  tenantId: string;
  requestId: string;
  actualMicros: string;
  model?: string | null;
  usage?: UsageQuantity[];
  /** 0 (default) the original usage; a higher revision corrects the request's posted to `actualMicros`. */
  revision?: number;
  /** When the usage happened (default: now): dates the usage line, and picks the period of a usage with no hold. */
  occurredAt?: Date | null;
  /** The agent (and its team and user) of a usage that may have no hold: with `agentId`, such a usage is posted late in its period instead of refused. */
  agentId?: string | null;
  teamId?: string | null;
  userId?: string | null;
  /** A request served from this allotment (it has no hold of its own): its cost is drawn from the allotment's. */
  allotmentId?: string | null;
}
export interface ReleaseInput {
  tenantId: string;
  requestId: string;
}

export interface LevelStatus {
  level: Level;
  subjectId: string;
  budgetId: string;
  hard: boolean;
  period: string;
  limitMicros: string;
  postedMicros: string;
  pendingMicros: string;
  remainingMicros: string;
  periodStart: string | null;
  resetsAt: string | null;
}

type Item = { command: LedgerCommand; caller: ServiceName };
/** The rows a batch is decided on, by hold key and account key. */
type Rows = { holds: ReadonlyMap<string, Hold>; accounts: ReadonlyMap<string, Account> };

/** Expiries of a failed sweeper batch tried again one at a time, per tick. */
const EXPIRE_ALONE_PER_TICK = 50;
const UNEXPIRABLE_MAX = 1000;
/** How long a lane locks again after a batch on remembered rows found one changed (another instance writes them too). */
const LOCK_AFTER_STALE_MS = 1000;
/** Accounts remembered (budgets × periods in use on this instance) and holds (those in flight, and the last ended). */
const KNOWN_ACCOUNTS = 100_000;
const KNOWN_HOLDS = 10_000;

/**
 * The ledger: reserve → settle → release on the agent, its team and the tenant at once.
 * Each operation is decided by the pure `ledger.decider.ts` on rows locked in one
 * transaction, grouped with whatever else arrived meanwhile (group commit, `Batcher`),
 * and stored with its events and usage line in that transaction.
 *
 * Not through the CommandHandler: one decision here moves three shared budget rows and a
 * hold; the CommandHandler's model (load one stream, decide, append at its version)
 * would serialise on one stream and reread it on every call. The hold stream
 * `hold-<tenant>.<requestId>` is still appended at exact versions (the hold row carries
 * it, locked), through the same events table, so the outbox relays it like any other.
 */
export class LedgerService {
  private readonly batcher: Batcher<Item, LedgerAnswer>;
  private readonly now: () => Date;
  /** Period accounts known to exist (rows are never deleted): no insert attempt for them. */
  private readonly opened = new Set<string>();
  private readonly budgetCache = new Map<string, { budget: BudgetRow | undefined; until: number }>();
  /**
   * Accounts and holds as this instance last committed them (or locked them): a batch on these alone needs no lock
   * statement. The least recently used go first (a row forgotten is read under the lock). A hold that is no longer
   * held is kept as it ended rather than deleted, and counts as not remembered: lru-cache's delete of its last
   * entry clears its arrays (O(max)), and a quiet instance would empty this at nearly every settle.
   */
  private readonly knownAccounts = new LRUCache<string, Account>({ max: KNOWN_ACCOUNTS });
  private readonly knownHolds = new LRUCache<string, Hold>({ max: KNOWN_HOLDS });
  /** Holds the sweeper could not expire even alone: kept out of its batches (`expire`). */
  private readonly unexpirable = new LRUCache<string, true>({ max: UNEXPIRABLE_MAX });
  /** Until then every batch locks (a batch on remembered rows found one changed). */
  private lockUntil = 0;

  constructor(private readonly d: LedgerServiceDependencies) {
    this.now = d.now ?? (() => new Date());
    this.batcher = new Batcher<Item, LedgerAnswer>({
      lanes: d.lanes ?? 1,
      maxBatch: d.maxBatch ?? 256,
      laneOf: (i) => hashOf(i.command.requestId),
      run: (items) => this.runBatch(items),
    });
  }

  reserve(caller: ServiceName, input: ReserveInput): Promise<ReserveAnswer> {
    if (input.minAmountMicros !== undefined) mayAllot(caller, 'ask for a budget allotment');
    const command: ReserveCommand = {
      type: 'reserve',
      tenantId: input.tenantId,
      requestId: input.requestId,
      agentId: input.agentId,
      teamId: input.teamId ?? null,
      userId: input.userId ?? null,
      amount: micros(input.amountMicros, 'amountMicros'),
      ...(input.minAmountMicros !== undefined ? { minAmount: micros(input.minAmountMicros, 'minAmountMicros') } : {}),
      ttlMs: input.ttlMs,
      now: this.now(),
      accountKeys: [],
    };
    return this.batcher.submit({ command, caller }) as Promise<ReserveAnswer>;
  }

  settle(caller: ServiceName, input: SettleInput): Promise<SettleAnswer> {
    if (input.allotmentId) mayAllot(caller, 'settle against a budget allotment');
    const command: SettleCommand = {
      type: 'settle',
      tenantId: input.tenantId,
      requestId: input.requestId,
      actual: micros(input.actualMicros, 'actualMicros'),
      model: input.model ?? null,
      usage: input.usage ?? [],
      now: this.now(),
      revision: input.revision ?? 0,
      occurredAt: input.occurredAt ?? null,
      agentId: input.agentId ?? null,
      teamId: input.teamId ?? null,
      userId: input.userId ?? null,
      allotmentId: input.allotmentId ?? null,
      accountKeys: [],
    };
    return this.batcher.submit({ command, caller }) as Promise<SettleAnswer>;
  }

  release(caller: ServiceName, input: ReleaseInput): Promise<ReleaseAnswer> {
    return this.batcher.submit({ command: { type: 'release', tenantId: input.tenantId, requestId: input.requestId, now: this.now() }, caller }) as Promise<ReleaseAnswer>;
  }

  /**
   * The sweeper's tick: releases holds past their TTL (`billing.hold.expired`); how many. A batch fails as a
   * whole, so what failed is tried again one at a time (a few per tick), and a hold that fails alone too (a
   * bug's, caught by the CHECK) is remembered as unexpirable: later ticks keep it out of the batches, so it
   * never holds the others back, and try it alone again after them (`unexpirableHolds`: the sweeper reports it).
   */
  async expire(limit = 500): Promise<number> {
    const now = this.now();
    const due = await this.d.repo.expiredHolds(now, limit);
    const expire = (k: { tenantId: string; requestId: string }) =>
      this.batcher.submit({ command: { type: 'expire', tenantId: k.tenantId, requestId: k.requestId, now }, caller: 'billing' }).catch(() => undefined);
    const keyOf = (k: { tenantId: string; requestId: string }) => holdKey(k.tenantId, k.requestId);
    const batched = due.filter((k) => !this.unexpirable.has(keyOf(k)));
    const answers = await Promise.all(batched.map(expire));
    const alone = [...batched.filter((_, i) => !answers[i]), ...due.filter((k) => this.unexpirable.has(keyOf(k)))].slice(0, EXPIRE_ALONE_PER_TICK);
    for (const k of alone) {
      const answer = await expire(k);
      if (answer) this.unexpirable.delete(keyOf(k));
      else this.unexpirable.set(keyOf(k), true);
      answers.push(answer);
    }
    return answers.filter((a) => a && a.status === 'expired' && a.releasedMicros !== '0').length;
  }

  /** Holds past their TTL that could not be expired even alone (remembered, at most UNEXPIRABLE_MAX). */
  get unexpirableHolds(): number {
    return this.unexpirable.size;
  }

  /** Budget status per level (limit, posted, pending, remaining, resets at), optionally of one level and subject. */
  async status(tenantId: string, filter: { level?: Level; subjectId?: string } = {}): Promise<LevelStatus[]> {
    const now = this.now();
    const rows = await this.d.repo.currentAccounts(tenantId, now, filter);
    return rows.map(({ budget, account }) => {
      const window = periodOf(now, budget.period, budget.timeZone);
      const posted = account?.posted ?? 0n;
      const pending = account?.pending ?? 0n;
      const limit = account?.limit ?? budget.limit;
      const remaining = limit - posted - pending;
      return {
        level: budget.level,
        subjectId: budget.subjectId,
        budgetId: budget.budgetId,
        hard: budget.hard,
        period: budget.period,
        limitMicros: limit.toString(),
        postedMicros: posted.toString(),
        pendingMicros: pending.toString(),
        remainingMicros: (remaining > 0n ? remaining : 0n).toString(),
        periodStart: budget.period === 'none' ? null : window.start.toISOString(),
        resetsAt: window.end?.toISOString() ?? null,
      };
    });
  }

  /** What an agent may still spend: the least remaining over its hard levels (agent, team, tenant); null when unlimited. */
  async remaining(tenantId: string, agentId: string, teamId: string | null, userId: string | null = null): Promise<{ remainingMicros: string | null; levels: LevelStatus[] }> {
    const all = await this.status(tenantId);
    const mine: Record<Level, string | null> = { tenant: tenantId, team: teamId, user: userId, agent: agentId };
    const levels = all.filter((l) => mine[l.level] === l.subjectId);
    const hard = levels.filter((l) => l.hard).map((l) => BigInt(l.remainingMicros));
    const least = hard.length === 0 ? null : hard.reduce((a, b) => (a < b ? a : b));
    return { remainingMicros: least === null ? null : least.toString(), levels };
  }

  private async runBatch(items: Item[]): Promise<Array<LedgerAnswer | Error>> {
    // a reserve's accounts, and those of a usage that names its agent (it may have no hold: then they are where it is posted)
    const resolving = items.map((i) => i.command).filter((c): c is ReserveCommand | SettleCommand => c.type === 'reserve' || (c.type === 'settle' && !!c.agentId));
    await this.resolveAccounts(resolving);
    const { repo } = this.d;
    const known = this.rememberedRows(items);
    if (known) {
      try {
        // one round trip: the write alone, checked against the rows as remembered
        return await repo.inTransaction((tx) => this.decideAndWrite(tx, items, known), 1);
      } catch (error) {
        // only rows not as remembered (another instance or lane moved one, or holds the request id after all), or a
        // deadlock or serialization failure (which the locked transaction would retry), are decided again, on locked
        // rows; anything else fails the batch as it would under the lock
        if (!decideAgain(error)) throw error;
        // and lock for a while (while others write the same rows, remembering them only costs a failed attempt)
        this.forgetRows(items);
        this.lockUntil = Date.now() + LOCK_AFTER_STALE_MS;
      }
    }
    return repo.inTransaction(async (tx) => {
      const holdKeys = dedupe(
        items.flatMap(({ command: c }) => [{ tenantId: c.tenantId, requestId: c.requestId }, ...(allotmentOf(c) ? [{ tenantId: c.tenantId, requestId: allotmentOf(c)! }] : [])]),
        (k) => holdKey(k.tenantId, k.requestId),
      );
      const reserveKeys = [...new Set(resolving.flatMap((c) => c.accountKeys))].map(keyParts);
      const locked = await repo.lock(tx, holdKeys, reserveKeys);
      return this.decideAndWrite(tx, items, { holds: locked.holds, accounts: new Map(locked.accounts.map((a) => [accountKey(a), a])) });
    });
  }

  /**
   * Decides each operation in turn on `found` (each sees what the previous left), writes
   * the result in one statement that commits, and remembers the rows as committed.
   */
  private async decideAndWrite(tx: LedgerTransaction, items: Item[], found: Rows): Promise<Array<LedgerAnswer | Error>> {
    const holds = new Map(found.holds); // found.holds stays what was found: which holds are new
    const accounts = new Map(found.accounts);
    const changedHolds = new Map<string, Hold>();
    const changedAccounts = new Map<string, Account>();
    const events: StreamEvent[] = [];
    const usage: UsageLine[] = [];
    const answers = items.map(({ command, caller }): LedgerAnswer | Error => {
      const key = holdKey(command.tenantId, command.requestId);
      const allotmentId = allotmentOf(command);
      let decision;
      try {
        decision = decide(command, holds.get(key), accounts, allotmentId ? holds.get(holdKey(command.tenantId, allotmentId)) : undefined);
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
      const metadata = { tenantId: command.tenantId, actor: { type: 'service' as const, id: caller }, now: command.now };
      const streamId = `hold-${command.tenantId}.${command.requestId}`;
      for (const event of decision.events) {
        const envelope = envelopeOf(this.d.eventContext, metadata, event);
        if (event.type === 'billing.budget.threshold_crossed') {
          events.push({ streamId: `budget-${event.data.budgetId}.${Date.parse(event.data.periodStart)}.t${event.data.threshold}`, version: 1, event: envelope, once: true });
        } else {
          events.push({ streamId, version: decision.hold!.version, event: envelope });
        }
        if (event.type === 'billing.hold.settled' && decision.line) {
          usage.push({
            ...decision.line,
            eventId: envelope.id,
            tenantId: command.tenantId,
            requestId: command.requestId,
            source: 'billing',
            agentId: event.data.agentId,
            teamId: event.data.teamId,
            model: event.data.model,
            usage: event.data.usage,
          });
        }
      }
      if (decision.hold) {
        holds.set(key, decision.hold);
        changedHolds.set(key, decision.hold);
      }
      if (decision.allotment) {
        // (its version stays: a draw appends no event on its stream; the write checks its version and its amount)
        const allotmentKey = holdKey(command.tenantId, decision.allotment.requestId);
        holds.set(allotmentKey, decision.allotment);
        changedHolds.set(allotmentKey, decision.allotment);
      }
      // a refusal moves nothing, but was decided on its accounts: they are written back as they are, so a
      // batch decided on remembered rows checks them too
      const moved = decision.hold?.status === 'refused' && command.type === 'reserve' ? command.accountKeys.map((k) => accounts.get(k)!) : decision.accounts;
      for (const a of moved) {
        accounts.set(accountKey(a), a);
        changedAccounts.set(accountKey(a), a);
      }
      return decision.answer;
    });
    // on remembered rows the write is what locks them: holds by key, accounts in the lock statement's order (level, budget, period)
    const written = [...changedHolds].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await this.d.repo.write(tx, {
      newHolds: written.filter(([key]) => !found.holds.has(key)).map(([, hold]) => hold),
      changedHolds: written.filter(([key]) => found.holds.has(key)).map(([key, hold]) => ({ hold, before: found.holds.get(key)!.version, beforeAmount: found.holds.get(key)!.amount })),
      accounts: [...changedAccounts]
        .sort(([, a], [, b]) => compareAccounts(a, b))
        .map(([key, after]) => ({ after, before: found.accounts.get(key)! })),
      events,
      usage,
    });
    this.remember(holds, accounts);
    return answers;
  }

  /**
   * The rows a batch needs, when this instance remembers every one of them as it last
   * committed them: the hold of each settle, release or expire (or a reserve earlier in the
   * batch makes it), and the accounts of every reserve and remembered hold. A reserve of a
   * request id it does not remember is taken for new (if another instance holds it, the
   * insert meets the primary key and the batch is decided again on locked rows). None
   * (`undefined`) while locking after a stale attempt, or when a row is not remembered.
   */
  private rememberedRows(items: Item[]): Rows | undefined {
    if (Date.now() < this.lockUntil) return undefined;
    const holds = new Map<string, Hold>();
    const accounts = new Map<string, Account>();
    const made = new Set<string>();
    const known = (key: string) => {
      const a = this.knownAccounts.get(key);
      if (a) accounts.set(key, a);
      return !!a;
    };
    for (const { command: c } of items) {
      const key = holdKey(c.tenantId, c.requestId);
      const hold = this.knownHolds.get(key);
      if (hold && hold.status !== 'held') return undefined; // settled, released or expired: through the lock
      if (hold) {
        holds.set(key, hold);
        if (!hold.accounts.every((a) => known(accountKey(a)))) return undefined;
      } else if (!made.has(key)) {
        const allotmentId = allotmentOf(c);
        if (allotmentId) {
          // a request served from an allotment: new (if another instance settled it, the insert meets the primary key), drawn from the allotment as remembered
          const allotmentKey = holdKey(c.tenantId, allotmentId);
          const allotment = holds.get(allotmentKey) ?? this.knownHolds.get(allotmentKey);
          if (!allotment || allotment.status !== 'held' || !allotment.accounts.every((a) => known(accountKey(a)))) return undefined;
          holds.set(allotmentKey, allotment);
        } else if (c.type !== 'reserve' || !c.accountKeys.every(known)) return undefined;
        made.add(key);
      }
    }
    return { holds, accounts };
  }

  /** After a commit: the batch's rows as committed (a hold no longer held is remembered only as not to be used: `rememberedRows`). */
  private remember(holds: ReadonlyMap<string, Hold>, accounts: ReadonlyMap<string, Account>): void {
    for (const [key, a] of accounts) this.knownAccounts.set(key, a);
    for (const [key, h] of holds) this.knownHolds.set(key, h);
  }

  private forgetRows(items: Item[]): void {
    this.knownAccounts.clear();
    for (const { command: c } of items) {
      this.knownHolds.delete(holdKey(c.tenantId, c.requestId));
      const allotmentId = allotmentOf(c);
      if (allotmentId) this.knownHolds.delete(holdKey(c.tenantId, allotmentId));
    }
  }

  /** Forget remembered budgets (after this instance changed one). */
  forgetBudgets(): void {
    this.budgetCache.clear();
    this.generation++;
  }

  /**
   * The budgets of these subjects. Remembered for `budgetCacheMs`; past that an entry is
   * still used once more while it is read again in the background (at most one read in
   * flight), so a reservation never waits for a refresh: a budget created or removed on
   * another instance applies within the cache time plus one read.
   */
  private async budgetsOf(subjects: BudgetSubject[]): Promise<Map<string, BudgetRow>> {
    const ttl = this.d.budgetCacheMs ?? 0;
    const now = Date.now();
    const found = new Map<string, BudgetRow>();
    const stale: BudgetSubject[] = [];
    const missing = subjects.filter((s) => {
      const hit = ttl > 0 ? this.budgetCache.get(subjectKey(s)) : undefined;
      if (!hit) return true;
      if (hit.until < now) stale.push(s);
      if (hit.budget) found.set(subjectKey(s), hit.budget);
      return false;
    });
    if (stale.length > 0 && !this.refreshing) {
      this.refreshing = this.readBudgets(stale, ttl)
        .catch(() => undefined) // the entries stay stale; the next batch tries again
        .finally(() => (this.refreshing = undefined));
    }
    if (missing.length === 0) return found;
    for (const [key, budget] of await this.readBudgets(missing, ttl)) found.set(key, budget);
    return found;
  }

  private refreshing: Promise<unknown> | undefined;

  /** Counts `forgetBudgets`: a read that started before one is not remembered (it may predate the change). */
  private generation = 0;

  private async readBudgets(subjects: BudgetSubject[], ttl: number): Promise<Map<string, BudgetRow>> {
    const generation = this.generation;
    const found = new Map((await this.d.repo.budgetsOf(subjects)).map((b) => [subjectKey(b), b]));
    if (ttl > 0 && generation === this.generation) {
      if (this.budgetCache.size > 100_000) this.budgetCache.clear();
      const until = Date.now() + ttl;
      for (const s of subjects) this.budgetCache.set(subjectKey(s), { budget: found.get(subjectKey(s)), until });
    }
    return found;
  }

  /**
   * For each reserve (at its time) and each usage naming its agent (at the usage's time):
   * the budgets of its tenant, team, user and agent, their periods at that time opened,
   * their keys on the command.
   */
  private async resolveAccounts(commands: Array<ReserveCommand | SettleCommand>): Promise<void> {
    if (commands.length === 0) return;
    const subjectsOf = (c: ReserveCommand | SettleCommand): BudgetSubject[] => [
      { tenantId: c.tenantId, level: 'tenant', subjectId: c.tenantId },
      ...(c.teamId ? [{ tenantId: c.tenantId, level: 'team' as const, subjectId: c.teamId }] : []),
      ...(c.userId ? [{ tenantId: c.tenantId, level: 'user' as const, subjectId: c.userId }] : []),
      { tenantId: c.tenantId, level: 'agent', subjectId: c.agentId! },
    ];
    const bySubject = await this.budgetsOf(dedupe(commands.flatMap(subjectsOf), subjectKey));
    const open = new Map<string, PeriodToOpen>();
    for (const c of commands) {
      const at = c.type === 'settle' ? (c.occurredAt ?? c.now) : c.now;
      c.accountKeys = subjectsOf(c)
        .map((s) => bySubject.get(subjectKey(s)))
        .filter((b) => b !== undefined)
        .map((budget) => {
          const w = periodOf(at, budget.period, budget.timeZone);
          const key = accountKey({ budgetId: budget.budgetId, periodStart: w.start });
          open.set(key, { budget, start: w.start, end: w.end });
          return key;
        });
    }
    for (const key of [...open.keys()]) if (this.opened.has(key)) open.delete(key);
    if (open.size === 0) return;
    if (this.opened.size > 100_000) this.opened.clear();
    await this.d.repo.openPeriods([...open.values()]);
    for (const key of open.keys()) this.opened.add(key);
  }
}

type BudgetSubject = { tenantId: string; level: Level; subjectId: string };

/**
 * Budget allotments are the LLM router's (it alone serves reservations from them in memory): another
 * caller, hostile or mistaken, may neither ask for one nor draw from one (a usage event of another source
 * naming one included), so it cannot charge its costs to a scope the router holds a block for.
 */
const ALLOTTING_CALLERS: readonly ServiceName[] = ['llm-router'];
function mayAllot(caller: ServiceName, what: string): void {
  if (!ALLOTTING_CALLERS.includes(caller)) throw new PalisadeError('forbidden', `${caller} may not ${what} (the llm-router's alone)`);
}

/** The allotment a settle draws from, if it names one. */
const allotmentOf = (c: LedgerCommand): string | null => (c.type === 'settle' ? (c.allotmentId ?? null) : null);

/** The one key of a budget's subject (tenant, level, subject id), for lookups and the cache. */
const subjectKey = (s: BudgetSubject): string => `${s.tenantId}\u0000${s.level}\u0000${s.subjectId}`;

function micros(value: string, field: string): bigint {
  if (!/^\d{1,19}$/.test(value)) throw new PalisadeError('validation', `${field}: must be a whole number of micro-units, as a decimal string`);
  return BigInt(value);
}

function keyParts(key: string): { budgetId: string; periodStart: Date } {
  const [budgetId, start] = key.split('|');
  return { budgetId, periodStart: new Date(Number(start)) };
}

function dedupe<T>(items: T[], keyOf: (t: T) => string): T[] {
  return [...new Map(items.map((i) => [keyOf(i), i])).values()];
}
