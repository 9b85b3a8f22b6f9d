import { PalisadeError } from '@palisade/contracts';
import type { NatsConnection } from '@palisade/nats';
import { NatsApiKeyResolver } from './api-keys';

const rpcRequest = jest.fn();
jest.mock('@palisade/nats', () => ({ rpcRequest: (...args: unknown[]) => rpcRequest(...args) }));

const nc = {} as NatsConnection;
const KEY = `palisade_${'a1'.repeat(12)}_${'S'.repeat(43)}`;

describe('API keys verified by auth over NATS', () => {
  beforeEach(() => rpcRequest.mockReset());

  it("asks auth's verify-api-key and answers the principal", async () => {
    rpcRequest.mockResolvedValue({ type: 'agent', id: 'bot', tenantId: 'acme', actingFor: 'alice', sessionId: 'apikey-x' });
    await expect(new NatsApiKeyResolver(() => nc, 1000).principalOf(KEY)).resolves.toEqual({ type: 'agent', id: 'bot', tenantId: 'acme', actingFor: 'alice', sessionId: 'apikey-x' });
    expect(rpcRequest).toHaveBeenCalledWith(nc, 'palisade.rpc.auth.verify-api-key', { apiKey: KEY }, { timeoutMs: 1000 });
  });

  it('a key auth refuses is unauthenticated; auth not answering, not connected or answering oddly is unavailable (nobody let through)', async () => {
    const resolver = new NatsApiKeyResolver(() => nc);
    rpcRequest.mockRejectedValueOnce(new PalisadeError('unauthenticated', 'API key is revoked'));
    await expect(resolver.principalOf(KEY)).rejects.toMatchObject({ code: 'unauthenticated', message: 'the API key is not valid' });
    rpcRequest.mockRejectedValueOnce(new PalisadeError('unavailable', 'no responders'));
    await expect(resolver.principalOf(KEY)).rejects.toMatchObject({ code: 'unavailable' });
    rpcRequest.mockResolvedValueOnce({ type: 'service', id: 'billing', tenantId: 'acme' });
    await expect(resolver.principalOf(KEY)).rejects.toMatchObject({ code: 'unavailable' });
    await expect(new NatsApiKeyResolver(() => undefined).principalOf(KEY)).rejects.toMatchObject({ code: 'unavailable' });
  });
});
