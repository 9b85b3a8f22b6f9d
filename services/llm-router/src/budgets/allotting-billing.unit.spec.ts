import { PalisadeError } from '@palisade/contracts';
import { AllottingBilling } from './allotting-billing';
import type { AllotmentPort, AllotRequest, AllotResult, ReserveRequest, SettleRequest } from './billing.port';

/** Billing as the router sees it: allotments granted from a budget (whole, or the request's alone near the limit), each call recorded. */
class Ledger implements AllotmentPort {
  calls: Array<{ method: string; id: string; amount?: number; allotmentId?: string }> = [];
  /** What billing holds or posted, per allotment / request. */
  allotments = new Map<string, { granted: number; drawn: number; released: boolean }>();
  posted = 0;
  pending = 0;
  unavailable = false;
  /** Answers wait for `answer()` when set. */
  gate: Array<() => void> | undefined;

  constructor(public limit: number) {}

  private async answered(): Promise<void> {
    if (this.gate) await new Promise<void>((resolve) => this.gate!.push(resolve));
    if (this.unavailable) throw new PalisadeError('unavailable', 'billing cannot be reached: refused (no unbudgeted call)');
  }

  /** Answers what waits (and keeps gating what comes next). */
  answer(): void {
    const waiting = this.gate ?? [];
    this.gate = [];
    for (const resolve of waiting) resolve();
  }

  /** Answers what waits, and everything after at once. */
  open(): void {
    this.answer();
    this.gate = undefined;
  }

  async allot(r: AllotRequest): Promise<AllotResult> {
    this.calls.push({ method: 'allot', id: r.allotmentId, amount: r.amountMicros });
    await this.answered();
    const room = this.limit - this.posted - this.pending;
    const granted = room >= r.amountMicros ? r.amountMicros : room >= r.minAmountMicros ? r.minAmountMicros : 0;
    if (granted === 0) return { status: 'refused', level: 'agent', limitMicros: this.limit, resetsAt: '2026-12-06T00:00:00.000Z' };
    this.pending += granted;
    this.allotments.set(r.allotmentId, { granted, drawn: 0, released: false });
    return { status: 'granted', amountMicros: granted };
  }

  async reserve(r: ReserveRequest) {
    this.calls.push({ method: 'reserve', id: r.requestId, amount: r.amountMicros });
    await this.answered();
    if (this.limit - this.posted - this.pending < r.amountMicros) return { status: 'refused' as const, level: 'agent' as const, limitMicros: this.limit };
    this.pending += r.amountMicros;
    return { status: 'held' as const };
  }

  async settle(s: SettleRequest) {
    this.calls.push({ method: 'settle', id: s.requestId, amount: s.amountMicros, allotmentId: s.allotmentId });
    await this.answered();
    const a = s.allotmentId ? this.allotments.get(s.allotmentId) : undefined;
    if (a && !a.released) {
      // billing's rule: draw min(actual, what it still holds); what it cannot cover would be an overrun
      const draw = Math.min(s.amountMicros, a.granted - a.drawn);
      expect(draw).toBe(s.amountMicros);
      a.drawn += draw;
      this.pending -= draw;
    }
    this.posted += s.amountMicros;
  }

  async release(r: { tenantId: string; requestId: string }) {
    this.calls.push({ method: 'release', id: r.requestId });
    await this.answered();
    const a = this.allotments.get(r.requestId);
    if (a && !a.released) {
      a.released = true;
      this.pending -= a.granted - a.drawn;
    }
  }

  of(method: string) {
    return this.calls.filter((c) => c.method === method);
  }
}

const T0 = Date.parse('2026-12-05T22:00:00.000Z');
const DEADLINE_MS = 20_000;

function setup(limit = 100_000, options: Partial<{ multiple: number; ttlMs: number; idleMs: number; refillBelow: number }> = {}) {
  const ledger = new Ledger(limit);
  let clock = T0;
  let n = 0;
  const billing = new AllottingBilling(ledger, { multiple: 8, ttlMs: 30_000, idleMs: 1000, now: () => clock, newId: () => `al-${++n}`, ...options });
  const request = (requestId: string, amountMicros = 100, agentId = 'bot'): ReserveRequest => ({
    tenantId: 'acme',
    requestId,
    agentId,
    teamId: 'ops',
    userId: 'carol',
    model: 'm',
    amountMicros,
    expiresAt: new Date(clock + DEADLINE_MS).toISOString(),
  });
  const settle = (requestId: string, amountMicros: number) =>
    billing.settle({ tenantId: 'acme', requestId, amountMicros, estimated: false, usage: { inputTokens: 1, outputTokens: 1 }, model: 'm', providerId: 'p' });
  return { ledger, billing, request, settle, advance: (ms: number) => (clock += ms) };
}

describe('AllottingBilling: reservations served from allotments in memory', () => {
  it('asks one allotment of the multiple, then serves the scope\'s requests with no hop until it is used up; settles name it', async () => {
    const { ledger, billing, request, settle } = setup();
    // each answer names the allotment it was served from (the usage event carries it to billing's metering)
    for (let i = 0; i < 8; i++) await expect(billing.reserve(request(`r${i}`))).resolves.toEqual({ status: 'held', allotmentId: 'al-1' });
    expect(ledger.calls).toEqual([{ method: 'allot', id: 'al-1', amount: 800 }]);
    expect(billing.allotments()).toEqual([{ id: 'al-1', granted: 800, committed: 800, inFlight: 8, retired: false }]);
    // settling replaces a worst case by the actual: room for more
    await settle('r0', 30);
    await settle('r1', 30);
    expect(ledger.of('settle')).toEqual([
      { method: 'settle', id: 'r0', amount: 30, allotmentId: 'al-1' },
      { method: 'settle', id: 'r1', amount: 30, allotmentId: 'al-1' },
    ]);
    await billing.reserve(request('r8'));
    expect(ledger.of('allot')).toHaveLength(1);
    // used up (760 + 100 > 800): a new allotment; the first is returned once its requests have settled
    await billing.reserve(request('r9'));
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    expect(ledger.of('release')).toEqual([]);
    for (const id of ['r2', 'r3', 'r4', 'r5', 'r6', 'r7']) await settle(id, 50);
    expect(ledger.of('release')).toEqual([]);
    await settle('r8', 100);
    expect(ledger.of('release')).toEqual([{ method: 'release', id: 'al-1' }]);
    expect(ledger.allotments.get('al-1')).toEqual({ granted: 800, drawn: 460, released: true });
    expect(ledger.of('reserve')).toEqual([]);
    expect(ledger.pending).toBe(800); // al-2 alone
  });

  it('concurrent requests of a scope with no allotment wait for one allotment request (coalesced); other scopes have their own', async () => {
    const { ledger, billing, request } = setup();
    ledger.gate = [];
    const answers = Promise.all([...Array.from({ length: 6 }, (_, i) => billing.reserve(request(`r${i}`))), billing.reserve(request('x', 100, 'other-bot'))]);
    await new Promise((r) => setImmediate(r));
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    ledger.answer();
    await expect(answers).resolves.toEqual([...Array.from({ length: 6 }, () => ({ status: 'held', allotmentId: 'al-1' })), { status: 'held', allotmentId: 'al-2' }]);
    expect(ledger.calls.map((c) => c.method)).toEqual(['allot', 'allot']);
    expect(billing.allotments().map((a) => [a.id, a.committed])).toEqual([
      ['al-1', 600],
      ['al-2', 100],
    ]);
  });

  it('under load the next allotment covers every request of the scope still waiting (at most 8 × the multiple), so they do not ask round after round', async () => {
    const { ledger, billing, request } = setup();
    ledger.gate = [];
    const answers = Promise.all(Array.from({ length: 20 }, (_, i) => billing.reserve(request(`r${i}`))));
    await new Promise((r) => setImmediate(r));
    ledger.open();
    await expect(answers).resolves.toEqual([...Array.from({ length: 8 }, () => ({ status: 'held', allotmentId: 'al-1' })), ...Array.from({ length: 12 }, () => ({ status: 'held', allotmentId: 'al-2' }))]);
    // the first asked for 8 (it alone was waiting then) and served 8; the 12 left asked once, for all 12
    expect(ledger.calls).toEqual([
      { method: 'allot', id: 'al-1', amount: 800 },
      { method: 'allot', id: 'al-2', amount: 1200 },
    ]);
    const many = setup();
    many.ledger.gate = [];
    const crowd = Promise.all(Array.from({ length: 100 }, (_, i) => many.billing.reserve(many.request(`q${i}`))));
    await new Promise((r) => setImmediate(r));
    many.ledger.open();
    await crowd;
    // 8, then 64 of the 92 left (the cap), then the 28 left
    expect(many.ledger.of('allot').map((c) => c.amount)).toEqual([800, 6400, 2800]);
    expect(many.ledger.of('reserve')).toEqual([]);
  });

  it('near the limit billing grants only the asking request\'s worst case: the others ask again, then reserve on their own; never more served than granted', async () => {
    const { ledger, billing, request, settle } = setup(350);
    ledger.gate = [];
    const answers = Promise.all(Array.from({ length: 5 }, (_, i) => billing.reserve(request(`r${i}`))));
    for (let i = 0; i < 20; i++) {
      ledger.answer();
      await new Promise((r) => setImmediate(r));
    }
    ledger.open();
    const results = await answers;
    expect(results.filter((r) => r.status === 'held')).toHaveLength(3);
    // (refused by their own reservation, as without allotments, after asking again)
    expect(results.filter((r) => r.status === 'refused')).toEqual([
      { status: 'refused', level: 'agent', limitMicros: 350 },
      { status: 'refused', level: 'agent', limitMicros: 350 },
    ]);
    expect(ledger.of('reserve').length).toBeGreaterThan(0);
    expect(ledger.pending).toBeLessThanOrEqual(350);
    for (const a of billing.allotments()) expect(a.committed).toBeLessThanOrEqual(a.granted);
    for (const [i, r] of results.entries()) if (r.status === 'held') await settle(`r${i}`, 100);
    expect(ledger.posted).toBe(300);
    // nothing remembered for the requests refused by their own reservation, nor for those settled
    expect((billing as unknown as { served: Map<string, unknown> }).served.size).toBe(0);
  });

  it('a refused allotment is the refusal of every waiter needing as much; a smaller request asks on its own', async () => {
    const { ledger, billing, request } = setup(150);
    ledger.gate = [];
    const big = billing.reserve(request('big', 200));
    const same = billing.reserve(request('same', 200));
    const small = billing.reserve(request('small', 100));
    await new Promise((r) => setImmediate(r));
    ledger.open();
    await expect(big).resolves.toMatchObject({ status: 'refused', level: 'agent', limitMicros: 150 });
    await expect(same).resolves.toMatchObject({ status: 'refused', level: 'agent' });
    await expect(small).resolves.toMatchObject({ status: 'held', allotmentId: expect.stringMatching(/^al-/) });
    expect(ledger.of('allot').map((c) => c.amount)).toEqual([1600, 800]);
    expect(ledger.pending).toBe(100);
  });

  it('fails closed: billing unreachable fails the asker and its waiters (no unbudgeted call), and gives the allotment id back in case it was granted', async () => {
    const { ledger, billing, request } = setup();
    ledger.gate = [];
    ledger.unavailable = true;
    const answers = [billing.reserve(request('a')), billing.reserve(request('b'))];
    await new Promise((r) => setImmediate(r));
    ledger.open();
    for (const answer of answers) await expect(answer).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise((r) => setImmediate(r));
    expect(ledger.of('release')).toEqual([{ method: 'release', id: 'al-1' }]);
    expect(billing.allotments()).toEqual([]);
  });

  it('a request reserved on its own (no allotment had room after three rounds) is settled or released by its own hold, and leaves nothing behind when refused', async () => {
    const { ledger, billing, request, settle } = setup(150);
    await expect(billing.reserve(request('big', 200))).resolves.toMatchObject({ status: 'refused' });
    // a refusal of its own reservation, after asking: nothing remembered for it
    expect((billing as unknown as { served: Map<string, unknown> }).served.size).toBe(0);
    await billing.reserve(request('a', 100));
    await settle('a', 50);
    expect(ledger.of('settle')).toEqual([{ method: 'settle', id: 'a', amount: 50, allotmentId: 'al-2' }]);
    await settle('unknown', 5);
    await billing.release({ tenantId: 'acme', requestId: 'other' });
    expect(ledger.calls.slice(-2)).toEqual([
      { method: 'settle', id: 'unknown', amount: 5, allotmentId: undefined },
      { method: 'release', id: 'other' },
    ]);
  });

  it('a request that failed before the provider gives its worst case back with no hop', async () => {
    const { ledger, billing, request } = setup(100_000, { multiple: 2 });
    await billing.reserve(request('a'));
    await billing.reserve(request('b'));
    await billing.release({ tenantId: 'acme', requestId: 'a' });
    await billing.reserve(request('c'));
    expect(ledger.calls.map((c) => c.method)).toEqual(['allot']);
    expect(billing.allotments()).toEqual([{ id: 'al-1', granted: 200, committed: 200, inFlight: 2, retired: false }]);
  });

  it('stops serving well before the expiry (a deadline within a third of the TTL of it), and returns an allotment idle or past its serving time', async () => {
    const { ledger, billing, request, settle, advance } = setup();
    await billing.reserve(request('a'));
    // the allotment expires 30 s after a's deadline, serves deadlines up to 20 s after it
    advance(19_000);
    await billing.reserve(request('b'));
    expect(ledger.of('allot')).toHaveLength(1);
    advance(2_000);
    await billing.reserve(request('c'));
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    await settle('a', 10);
    expect(ledger.of('release')).toEqual([]);
    await settle('b', 10);
    expect(ledger.of('release')).toEqual([{ method: 'release', id: 'al-1' }]);
    // idle: nothing in flight, nothing served for idleMs
    await settle('c', 10);
    advance(999);
    billing.tick();
    expect(ledger.of('release')).toHaveLength(1);
    advance(1);
    billing.tick();
    expect(ledger.of('release').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    await new Promise((r) => setImmediate(r));
    expect(ledger.pending).toBe(0);
    expect(ledger.posted).toBe(30);
    expect(billing.allotments()).toEqual([]);
  });

  it('the allotment\'s TTL is beyond the deadline of every request it serves', async () => {
    const { ledger, billing, request, advance } = setup();
    const allot = jest.spyOn(ledger, 'allot');
    const expiries: number[] = [];
    const deadlines: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = request(`r${i}`, 10);
      await billing.reserve(r);
      deadlines.push(Date.parse(r.expiresAt));
      expiries.push(Date.parse(allot.mock.calls.at(-1)![0].expiresAt));
      advance(1_000);
    }
    for (let i = 0; i < 40; i++) expect(expiries[i] - deadlines[i]).toBeGreaterThanOrEqual(10_000);
    expect(allot.mock.calls.length).toBeGreaterThan(1);
  });

  it('forgets an allotment past its expiry (billing released it); a late settle still names it', async () => {
    const { ledger, billing, request, settle, advance } = setup();
    await billing.reserve(request('a'));
    advance(DEADLINE_MS + 30_000);
    billing.tick();
    expect(billing.allotments()).toEqual([]);
    await settle('a', 10);
    expect(ledger.of('settle')).toEqual([{ method: 'settle', id: 'a', amount: 10, allotmentId: 'al-1' }]);
  });

  it('on close: serves nothing more, returns what has nothing in flight, closes the port under it', async () => {
    const { ledger, billing, request } = setup();
    const close = jest.fn(async () => undefined);
    Object.assign(ledger, { close });
    await billing.reserve(request('a'));
    await billing.release({ tenantId: 'acme', requestId: 'a' });
    await billing.close();
    expect(ledger.of('release')).toEqual([{ method: 'release', id: 'al-1' }]);
    expect(close).toHaveBeenCalled();
    await billing.reserve(request('b'));
    expect(ledger.of('reserve')).toEqual([{ method: 'reserve', id: 'b', amount: 100 }]);
  });

  it('asks the next allotment ahead once a request leaves room for fewer than refillBelow worst cases: the requests after it do not wait for billing', async () => {
    const { ledger, billing, request, settle } = setup(100_000, { refillBelow: 2 });
    // one at a time, each settled at a quarter of its worst case: al-1 (800) serves 21 before a request leaves it less than 200
    for (let i = 0; i < 21; i++) {
      await billing.reserve(request(`r${i}`));
      await settle(`r${i}`, 25);
    }
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1']);
    // billing slow from here: the refill waits, the requests that fit do not
    ledger.gate = [];
    await expect(billing.reserve(request('r21'))).resolves.toEqual({ status: 'held', allotmentId: 'al-1' });
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    const settled = settle('r21', 25);
    await expect(billing.reserve(request('r22'))).resolves.toEqual({ status: 'held', allotmentId: 'al-1' });
    // one refill at a time
    expect(ledger.of('allot')).toHaveLength(2);
    ledger.open();
    await settled;
    await settle('r22', 25);
    await new Promise((r) => setImmediate(r));
    // the successor serves from here, and al-1 (nothing in flight) is returned: billing posted what it served
    await expect(billing.reserve(request('r23'))).resolves.toEqual({ status: 'held', allotmentId: 'al-2' });
    await new Promise((r) => setImmediate(r));
    expect(ledger.of('release')).toEqual([{ method: 'release', id: 'al-1' }]);
    expect(ledger.allotments.get('al-1')).toEqual({ granted: 800, drawn: 575, released: true });
    expect(ledger.pending).toBe(800); // al-2 alone
    expect(ledger.of('reserve')).toEqual([]);
  });

  it('asks nothing ahead behind an allotment granted less than asked (near the limit)', async () => {
    const { ledger, billing, request, settle } = setup(500, { refillBelow: 2 });
    for (let i = 0; i < 3; i++) {
      await billing.reserve(request(`r${i}`));
      await settle(`r${i}`, 25);
    }
    // granted 100 of the 800 asked: each request then needs an allotment of its own when it comes
    expect(ledger.of('allot').map((c) => c.amount)).toEqual([800, 800, 800]);
    expect(ledger.allotments.get('al-1')?.granted).toBe(100);
  });

  it('a refill refused or failed leaves the current allotment serving what fits; a request that does not fit asks again', async () => {
    const { ledger, billing, request, settle } = setup(100_000, { refillBelow: 7 });
    await billing.reserve(request('a'));
    await settle('a', 100);
    ledger.unavailable = true;
    // room 700 - 100 < 7 × 100: asked ahead, and billing cannot be reached
    await expect(billing.reserve(request('b'))).resolves.toEqual({ status: 'held', allotmentId: 'al-1' });
    await new Promise((r) => setImmediate(r));
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    expect(ledger.of('release')).toEqual([{ method: 'release', id: 'al-2' }]);
    // al-1 serves on (asked ahead once), and the request that does not fit asks, fails closed
    for (const id of ['c', 'd', 'e', 'f', 'g', 'h']) await expect(billing.reserve(request(id))).resolves.toEqual({ status: 'held', allotmentId: 'al-1' });
    expect(ledger.of('allot')).toHaveLength(2);
    await expect(billing.reserve(request('x'))).rejects.toMatchObject({ code: 'unavailable' });
    ledger.unavailable = false;
    await expect(billing.reserve(request('i'))).resolves.toEqual({ status: 'held', allotmentId: 'al-4' });
  });

  it('an allotment asked ahead and granted after close began is given back at once', async () => {
    const { ledger, billing, request } = setup(100_000, { refillBelow: 7 });
    await billing.reserve(request('a'));
    ledger.gate = [];
    // room 600 < 7 × 100: al-2 asked ahead, and billing answers it only after close began
    await billing.reserve(request('b'));
    expect(ledger.of('allot').map((c) => c.id)).toEqual(['al-1', 'al-2']);
    for (const id of ['a', 'b']) await billing.release({ tenantId: 'acme', requestId: id });
    const closed = billing.close();
    ledger.open();
    await closed;
    await new Promise((r) => setImmediate(r));
    expect(ledger.of('release').map((c) => c.id).sort()).toEqual(['al-1', 'al-2']);
    expect(ledger.pending).toBe(0);
    expect(billing.allotments()).toEqual([]);
  });
});
