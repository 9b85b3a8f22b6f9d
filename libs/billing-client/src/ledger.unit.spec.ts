import { PalisadeError } from '@palisade/contracts';
import type { NatsConnection } from '@palisade/nats';
import { LedgerClient } from './ledger';

const rpcRequest = jest.fn();
jest.mock('@palisade/nats', () => ({ rpcRequest: (...args: unknown[]) => rpcRequest(...args) }));

const nc = {} as NatsConnection;
const ledger = new LedgerClient(() => nc, 1500);

describe('billing ledger client (billing wire format)', () => {
  beforeEach(() => rpcRequest.mockReset());

  it('reserves with decimal-string micro-units, the user when given, a ttl clamped to 1 s … 1 h', async () => {
    rpcRequest.mockResolvedValue({ status: 'reserved', requestId: 'e-1', amountMicros: '900', expiresAt: '2026-12-03T10:00:00.000Z' });
    await expect(ledger.reserve({ tenantId: 'acme', requestId: 'e-1', agentId: 'bot', teamId: 'platform', userId: 'alice', amountMicros: 900n, ttlMs: 4_000_000 })).resolves.toEqual({ status: 'held', expiresAt: '2026-12-03T10:00:00.000Z' });
    expect(rpcRequest).toHaveBeenCalledWith(nc, 'palisade.rpc.billing.reserve', { tenantId: 'acme', requestId: 'e-1', agentId: 'bot', teamId: 'platform', userId: 'alice', amountMicros: '900', ttlMs: 3_600_000 }, { timeoutMs: 1500 });
    await ledger.reserve({ tenantId: 'acme', requestId: 'e-2', agentId: 'user:alice', amountMicros: 1, ttlMs: 10 });
    expect(rpcRequest.mock.calls[1][2]).toEqual({ tenantId: 'acme', requestId: 'e-2', agentId: 'user:alice', teamId: null, amountMicros: '1', ttlMs: 1000 });
  });

  it('answers a refusal with the level, its limit and its reset (every level billing names)', async () => {
    rpcRequest.mockResolvedValue({ status: 'refused', requestId: 'e-1', level: 'user', budgetId: 'b', limitMicros: '5000', postedMicros: '5000', pendingMicros: '0', availableMicros: '0', resetsAt: null });
    await expect(ledger.reserve({ tenantId: 'acme', requestId: 'e-1', agentId: 'bot', amountMicros: 1, ttlMs: 1000 })).resolves.toEqual({ status: 'refused', level: 'user', limitMicros: 5000 });
  });

  it('fails closed: no connection, an error, an unknown answer are unavailable; a quote keeps billing’s not_found', async () => {
    await expect(new LedgerClient(() => undefined, 100).release({ tenantId: 'acme', requestId: 'e' })).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockResolvedValue({ status: 'maybe' });
    await expect(ledger.reserve({ tenantId: 'acme', requestId: 'e', agentId: 'bot', amountMicros: 1, ttlMs: 1000 })).rejects.toThrow(/unknown shape/);
    rpcRequest.mockRejectedValue(new PalisadeError('not_found', 'no price for sandbox/default cpu_ms'));
    await expect(ledger.quote({ tenantId: 'acme', provider: 'sandbox', model: 'default', usage: [{ kind: 'cpu_ms', quantity: 1 }] })).rejects.toMatchObject({ code: 'not_found', message: 'billing: no price for sandbox/default cpu_ms' });
    await expect(ledger.reserve({ tenantId: 'acme', requestId: 'e', agentId: 'bot', amountMicros: 1, ttlMs: 1000 })).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockResolvedValue({ amountMicros: 12 });
    await expect(ledger.quote({ tenantId: 'acme', provider: 'sandbox', model: 'default', usage: [] })).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('quotes as a bigint of µ-units and settles with the actual, the model and the usage', async () => {
    rpcRequest.mockResolvedValue({ amountMicros: '12345678901234567', currency: 'USD' });
    await expect(ledger.quote({ tenantId: 'acme', provider: 'sandbox', model: 'default', usage: [{ kind: 'wall_ms', quantity: 5 }] })).resolves.toBe(12345678901234567n);
    rpcRequest.mockResolvedValue({ status: 'settled' });
    await ledger.settle({ tenantId: 'acme', requestId: 'e-1', actualMicros: 7n, model: 'default', usage: [{ kind: 'cpu_ms', quantity: 3 }] });
    expect(rpcRequest).toHaveBeenLastCalledWith(nc, 'palisade.rpc.billing.settle', { tenantId: 'acme', requestId: 'e-1', actualMicros: '7', model: 'default', usage: [{ kind: 'cpu_ms', quantity: 3 }] }, { timeoutMs: 1500 });
  });

  it('asks an allotment as a reserve with minAmountMicros under the allotment id; granted with its amount, refused as a reservation; a grant below the minimum is unavailable', async () => {
    rpcRequest.mockResolvedValue({ status: 'reserved', requestId: 'al-1', amountMicros: '8000', expiresAt: '2026-12-03T10:00:30.000Z' });
    const allot = { tenantId: 'acme', allotmentId: 'al-1', agentId: 'bot', teamId: 'platform', amountMicros: 8000, minAmountMicros: 1000, ttlMs: 30_000 };
    await expect(ledger.allot(allot)).resolves.toEqual({ status: 'granted', amountMicros: 8000, expiresAt: '2026-12-03T10:00:30.000Z' });
    expect(rpcRequest).toHaveBeenLastCalledWith(nc, 'palisade.rpc.billing.reserve', { tenantId: 'acme', requestId: 'al-1', agentId: 'bot', teamId: 'platform', amountMicros: '8000', minAmountMicros: '1000', ttlMs: 30_000 }, { timeoutMs: 1500 });
    rpcRequest.mockResolvedValue({ status: 'refused', requestId: 'al-1', level: 'agent', limitMicros: '5000', resetsAt: '2026-12-04T00:00:00.000Z' });
    await expect(ledger.allot(allot)).resolves.toEqual({ status: 'refused', level: 'agent', limitMicros: 5000, resetsAt: '2026-12-04T00:00:00.000Z' });
    rpcRequest.mockResolvedValue({ status: 'reserved', requestId: 'al-1', amountMicros: '999', expiresAt: '2026-12-03T10:00:30.000Z' });
    await expect(ledger.allot(allot)).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockResolvedValue({ status: 'settled' });
    await ledger.settle({ tenantId: 'acme', requestId: 'r-1', actualMicros: 7, allotmentId: 'al-1' });
    expect(rpcRequest).toHaveBeenLastCalledWith(nc, 'palisade.rpc.billing.settle', { tenantId: 'acme', requestId: 'r-1', actualMicros: '7', allotmentId: 'al-1' }, { timeoutMs: 1500 });
  });
});
