import { PalisadeError } from '@palisade/contracts';
import type { NatsConnection } from '@palisade/nats';
import { NatsBillingAdapter } from './billing.nats';

const rpcRequest = jest.fn();
jest.mock('@palisade/nats', () => ({ rpcRequest: (...args: unknown[]) => rpcRequest(...args) }));

const nc = {} as NatsConnection;
const now = Date.parse('2026-12-03T10:00:00.000Z');
const adapter = new NatsBillingAdapter(() => nc, 2000, () => now);
const reserve = { tenantId: 'acme', requestId: 'r-1', agentId: 'release-bot', userId: 'alice', teamId: 'platform', model: 'default', amountMicros: 20_480, expiresAt: '2026-12-03T10:10:00.000Z' };

describe('billing port over NATS (billing ledger wire format)', () => {
  beforeEach(() => rpcRequest.mockReset());

  it('reserves with decimal-string micro-units, the agent, the user it acts for (user-level budgets), its team and the deadline as ttlMs', async () => {
    rpcRequest.mockResolvedValue({ status: 'reserved', requestId: 'r-1', amountMicros: '20480', expiresAt: '2026-12-03T10:10:00.000Z' });
    await expect(adapter.reserve(reserve)).resolves.toEqual({ status: 'held' });
    expect(rpcRequest).toHaveBeenCalledWith(nc, 'palisade.rpc.billing.reserve', { tenantId: 'acme', requestId: 'r-1', agentId: 'release-bot', teamId: 'platform', userId: 'alice', amountMicros: '20480', ttlMs: 600_000 }, { timeoutMs: 2000 });
  });

  it('turns a refusal into the level (the acting user’s too), its limit and its reset', async () => {
    rpcRequest.mockResolvedValueOnce({ status: 'refused', requestId: 'r-1', level: 'user', limitMicros: '1000', resetsAt: null });
    await expect(adapter.reserve(reserve)).resolves.toEqual({ status: 'refused', level: 'user', limitMicros: 1000 });
    rpcRequest.mockResolvedValue({ status: 'refused', requestId: 'r-1', level: 'team', budgetId: 'b', limitMicros: '50000000', postedMicros: '1', pendingMicros: '0', availableMicros: '0', resetsAt: '2027-01-01T00:00:00.000Z' });
    await expect(adapter.reserve(reserve)).resolves.toEqual({ status: 'refused', level: 'team', limitMicros: 50_000_000, resetsAt: '2027-01-01T00:00:00.000Z' });
  });

  it('fails closed: no connection, an error, a timeout or an unknown answer is unavailable', async () => {
    await expect(new NatsBillingAdapter(() => undefined, 2000).reserve(reserve)).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockRejectedValue(new PalisadeError('unavailable', 'no responders'));
    await expect(adapter.reserve(reserve)).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockRejectedValue(new PalisadeError('validation', 'amountMicros: bad'));
    await expect(adapter.reserve(reserve)).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockResolvedValue({ status: 'maybe' });
    await expect(adapter.reserve(reserve)).rejects.toThrow(/unknown shape/);
  });

  it('settles the actual cost with usage quantities per kind, marking an estimate', async () => {
    rpcRequest.mockResolvedValue({ status: 'settled' });
    await adapter.settle({ tenantId: 'acme', requestId: 'r-1', amountMicros: 340, estimated: true, usage: { inputTokens: 100, outputTokens: 20, cacheReadTokens: 5, cacheWriteTokens: 0 }, model: 'gpt', providerId: 'cloud' });
    expect(rpcRequest).toHaveBeenCalledWith(
      nc,
      'palisade.rpc.billing.settle',
      {
        tenantId: 'acme',
        requestId: 'r-1',
        actualMicros: '340',
        model: 'gpt',
        usage: [
          { kind: 'input_tokens', quantity: 100 },
          { kind: 'output_tokens', quantity: 20 },
          { kind: 'cache_read_tokens', quantity: 5 },
          { kind: 'estimated', quantity: 1 },
        ],
      },
      { timeoutMs: 2000 },
    );
  });

  it('asks an allotment (a reserve with minAmountMicros under its id, the deadline as ttlMs) and settles a request against it', async () => {
    rpcRequest.mockResolvedValue({ status: 'reserved', requestId: 'al-1', amountMicros: '163840', expiresAt: '2026-12-03T10:10:30.000Z' });
    const allot = { tenantId: 'acme', allotmentId: 'al-1', agentId: 'release-bot', userId: 'alice', teamId: 'platform', amountMicros: 163_840, minAmountMicros: 20_480, expiresAt: '2026-12-03T10:10:30.000Z' };
    await expect(adapter.allot(allot)).resolves.toEqual({ status: 'granted', amountMicros: 163_840 });
    expect(rpcRequest).toHaveBeenCalledWith(nc, 'palisade.rpc.billing.reserve', { tenantId: 'acme', requestId: 'al-1', agentId: 'release-bot', teamId: 'platform', userId: 'alice', amountMicros: '163840', minAmountMicros: '20480', ttlMs: 630_000 }, { timeoutMs: 2000 });
    rpcRequest.mockResolvedValue({ status: 'refused', requestId: 'al-1', level: 'agent', limitMicros: '1000', resetsAt: null });
    await expect(adapter.allot(allot)).resolves.toEqual({ status: 'refused', level: 'agent', limitMicros: 1000 });
    rpcRequest.mockRejectedValue(new PalisadeError('unavailable', 'no responders'));
    await expect(adapter.allot(allot)).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockResolvedValue({ status: 'settled' });
    await adapter.settle({ tenantId: 'acme', requestId: 'r-2', amountMicros: 7, estimated: false, usage: { inputTokens: 1, outputTokens: 1 }, model: 'gpt', providerId: 'cloud', allotmentId: 'al-1' });
    expect(rpcRequest.mock.calls.at(-1)![2]).toMatchObject({ requestId: 'r-2', actualMicros: '7', allotmentId: 'al-1' });
  });
});
