import type { BillingPort, ReserveRequest, SettleRequest } from './billing.port';
import { SettleBatcher } from './settle-batcher';

/** Records each call with the turn of the event loop it came in (the turn counter moves on every timer fired). */
class Recording implements BillingPort {
  calls: Array<{ method: string; requestId: string; turn: number }> = [];
  turn = 0;
  failing = new Set<string>();
  async reserve(r: ReserveRequest) {
    this.calls.push({ method: 'reserve', requestId: r.requestId, turn: this.turn });
    return { status: 'held' as const };
  }
  async settle(r: SettleRequest) {
    this.calls.push({ method: 'settle', requestId: r.requestId, turn: this.turn });
    if (this.failing.has(r.requestId)) throw new Error(`billing refused ${r.requestId}`);
  }
  async release(r: { requestId: string }) {
    this.calls.push({ method: 'release', requestId: r.requestId, turn: this.turn });
  }
}

const settle = (requestId: string): SettleRequest => ({ tenantId: 'acme', requestId, amountMicros: 10, estimated: false, usage: { inputTokens: 1, outputTokens: 1 }, model: 'm', providerId: 'p' });
const reserve = (requestId: string): ReserveRequest => ({ tenantId: 'acme', requestId, agentId: 'a', model: 'm', amountMicros: 100, expiresAt: '2026-12-05T00:00:00.000Z' });

describe('SettleBatcher: settle requests leave together, reservations never wait', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('holds settle requests for the linger, then sends them all in one turn', async () => {
    const billing = new Recording();
    const batcher = new SettleBatcher(billing, { lingerMs: 20, maxBatch: 64 });
    const answers = [batcher.settle(settle('r1')), batcher.settle(settle('r2'))];
    jest.advanceTimersByTime(10);
    const third = batcher.settle(settle('r3'));
    jest.advanceTimersByTime(9);
    expect(billing.calls).toEqual([]);
    billing.turn = 1;
    jest.advanceTimersByTime(1);
    expect(billing.calls).toEqual(['r1', 'r2', 'r3'].map((requestId) => ({ method: 'settle', requestId, turn: 1 })));
    await expect(Promise.all([...answers, third])).resolves.toEqual([undefined, undefined, undefined]);
  });

  it('sends a full batch at once, without waiting for the linger', () => {
    const billing = new Recording();
    const batcher = new SettleBatcher(billing, { lingerMs: 20, maxBatch: 3 });
    for (const id of ['r1', 'r2', 'r3', 'r4']) void batcher.settle(settle(id));
    expect(billing.calls.map((c) => c.requestId)).toEqual(['r1', 'r2', 'r3']);
    jest.advanceTimersByTime(20);
    expect(billing.calls.map((c) => c.requestId)).toEqual(['r1', 'r2', 'r3', 'r4']);
  });

  it("gives each caller billing's own answer to its request", async () => {
    const billing = new Recording();
    billing.failing.add('r2');
    const batcher = new SettleBatcher(billing, { lingerMs: 5, maxBatch: 64 });
    const first = batcher.settle(settle('r1'));
    const second = batcher.settle(settle('r2'));
    jest.advanceTimersByTime(5);
    await expect(first).resolves.toBeUndefined();
    await expect(second).rejects.toThrow('billing refused r2');
  });

  it('passes reservations and releases on at once (budgets first)', async () => {
    const billing = new Recording();
    const batcher = new SettleBatcher(billing, { lingerMs: 20, maxBatch: 64 });
    void batcher.settle(settle('r1'));
    await expect(batcher.reserve(reserve('r2'))).resolves.toEqual({ status: 'held' });
    await batcher.release({ tenantId: 'acme', requestId: 'r3' });
    expect(billing.calls.map((c) => `${c.method} ${c.requestId}`)).toEqual(['reserve r2', 'release r3']);
  });

  it('on close sends what waits at once and later requests without delay, and waits for their answers', async () => {
    const billing = new Recording();
    let answer!: () => void;
    billing.settle = async (r) => {
      billing.calls.push({ method: 'settle', requestId: r.requestId, turn: billing.turn });
      if (r.requestId === 'r1') await new Promise<void>((resolve) => (answer = resolve));
    };
    const batcher = new SettleBatcher(billing, { lingerMs: 1000, maxBatch: 64 });
    const first = batcher.settle(settle('r1'));
    let closed = false;
    const closing = batcher.close().then(() => (closed = true));
    expect(billing.calls.map((c) => c.requestId)).toEqual(['r1']);
    await batcher.settle(settle('r2'));
    expect(billing.calls.map((c) => c.requestId)).toEqual(['r1', 'r2']);
    await Promise.resolve();
    expect(closed).toBe(false);
    answer();
    await closing;
    await expect(first).resolves.toBeUndefined();
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a port that throws at once fails that request only: the others of the batch are answered, the timer turn survives', async () => {
    const billing = new Recording();
    const asynchronous = billing.settle.bind(billing);
    billing.settle = (r) => {
      if (r.requestId === 'r2') throw new Error('thrown, not rejected');
      return asynchronous(r);
    };
    const batcher = new SettleBatcher(billing, { lingerMs: 20, maxBatch: 64 });
    const answers = ['r1', 'r2', 'r3'].map((id) => batcher.settle(settle(id)));
    jest.advanceTimersByTime(20);
    const [r1, r2, r3] = await Promise.allSettled(answers);
    expect([r1.status, r3.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(r2).toMatchObject({ status: 'rejected', reason: new Error('thrown, not rejected') });
    await expect(batcher.close()).resolves.toBeUndefined();
  });
});

