import { PalisadeError } from '@palisade/contracts';
import type { NatsConnection } from '@palisade/nats';
import type { ProviderDefinition } from '../catalog/catalog.events';
import { vaultNameOf, VaultProviderKeys } from './provider-keys';

const rpcRequest = jest.fn();
jest.mock('@palisade/nats', () => ({ rpcRequest: (...args: unknown[]) => rpcRequest(...args) }));

const nc = {} as NatsConnection;
const SECRET = '3f0b6a52-3c1e-4a8e-9d59-0a8e41b7c001';
const KEY = 'sk-live-PROVIDER-KEY-never-logged';
const keyed: ProviderDefinition = { providerId: 'cloud', kind: 'openai', baseUrl: 'https://api.example/v1', compliance: 'external', apiKeySecretId: SECRET };
let clock = 0;
const keys = (cacheMs = 60_000) => new VaultProviderKeys({ nats: () => nc, cacheMs, timeoutMs: 3000, now: () => clock });

describe('provider keys from the vault (service secrets over NATS)', () => {
  beforeEach(() => {
    rpcRequest.mockReset();
    clock = 0;
  });

  it('needs no key for a provider without a key reference, and asks nothing', async () => {
    await expect(keys().keyFor('acme', { ...keyed, apiKeySecretId: undefined })).resolves.toBeUndefined();
    expect(rpcRequest).not.toHaveBeenCalled();
  });

  it("reads the key through the vault's audited read (purpose provider-call), of the caller's tenant", async () => {
    rpcRequest.mockResolvedValue({ secretId: SECRET, version: 1, value: KEY });
    await expect(keys().keyFor('acme', keyed)).resolves.toBe(KEY);
    expect(rpcRequest).toHaveBeenCalledWith(nc, 'palisade.rpc.credential.service-secret-read', { tenantId: 'acme', secretId: SECRET, purpose: 'provider-call' }, { timeoutMs: 3000 });
  });

  it('keeps a key in memory only for the cache period; concurrent calls share one read; another tenant reads its own', async () => {
    rpcRequest.mockResolvedValue({ secretId: SECRET, version: 1, value: KEY });
    const k = keys(1000);
    await Promise.all([k.keyFor('acme', keyed), k.keyFor('acme', keyed), k.keyFor('acme', keyed)]);
    expect(rpcRequest).toHaveBeenCalledTimes(1);
    clock = 999;
    await k.keyFor('acme', keyed);
    expect(rpcRequest).toHaveBeenCalledTimes(1);
    await k.keyFor('globex', keyed);
    expect(rpcRequest).toHaveBeenCalledTimes(2);
    clock = 1000;
    await k.keyFor('acme', keyed);
    expect(rpcRequest).toHaveBeenCalledTimes(3);
    k.forget('acme', SECRET);
    await k.keyFor('acme', keyed);
    expect(rpcRequest).toHaveBeenCalledTimes(4);
    // cache 0: every call reads (and the vault records every read)
    const uncached = keys(0);
    await uncached.keyFor('acme', keyed);
    await uncached.keyFor('acme', keyed);
    expect(rpcRequest).toHaveBeenCalledTimes(6);
  });

  it('fails closed without a value in the error: not found, no answer, no connection, an odd answer', async () => {
    for (const answer of [Promise.reject(new PalisadeError('not_found', 'secret not found')), Promise.reject(new PalisadeError('unavailable', 'no responders')), Promise.resolve({ secretId: SECRET })]) {
      answer.catch(() => undefined);
      rpcRequest.mockReturnValueOnce(answer);
      const error = await keys().keyFor('acme', keyed).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'unavailable', message: expect.stringMatching(/^the key of provider cloud could not be read from the vault \((not_found|unavailable|internal)\): refused, nothing was sent$/) });
    }
    await expect(new VaultProviderKeys({ nats: () => undefined, cacheMs: 0, timeoutMs: 1 }).keyFor('acme', keyed)).rejects.toMatchObject({ code: 'unavailable' });
    // a failed read is not remembered: the next call asks again
    rpcRequest.mockResolvedValue({ secretId: SECRET, version: 1, value: KEY });
    const k = keys();
    rpcRequest.mockRejectedValueOnce(new PalisadeError('unavailable', 'timeout'));
    await expect(k.keyFor('acme', keyed)).rejects.toMatchObject({ code: 'unavailable' });
    await expect(k.keyFor('acme', keyed)).resolves.toBe(KEY);
  });

  it("stores a key under the provider's vault name (create or rotate), forgets what it held, removes it (gone already is fine)", async () => {
    const k = keys();
    rpcRequest.mockResolvedValueOnce({ secretId: SECRET, version: 1, value: 'old' });
    expect(await k.keyFor('acme', keyed)).toBe('old');
    rpcRequest.mockResolvedValueOnce({ secretId: SECRET, version: 2 });
    await expect(k.store('acme', 'cloud', KEY)).resolves.toBe(SECRET);
    expect(rpcRequest).toHaveBeenLastCalledWith(nc, 'palisade.rpc.credential.service-secret-put', { tenantId: 'acme', name: 'llm-provider.cloud', value: KEY }, { timeoutMs: 3000 });
    rpcRequest.mockResolvedValueOnce({ secretId: SECRET, version: 2, value: KEY });
    expect(await k.keyFor('acme', keyed)).toBe(KEY);
    rpcRequest.mockRejectedValueOnce(new PalisadeError('conflict', 'name taken'));
    const refused = await k.store('acme', 'cloud', KEY).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'conflict' });
    expect(JSON.stringify(refused) + String((refused as Error).message)).not.toContain(KEY);
    rpcRequest.mockResolvedValueOnce({ secretId: SECRET, versionsDestroyed: [1, 2] });
    await k.remove('acme', SECRET);
    expect(rpcRequest).toHaveBeenLastCalledWith(nc, 'palisade.rpc.credential.service-secret-delete', { tenantId: 'acme', secretId: SECRET }, { timeoutMs: 3000 });
    rpcRequest.mockRejectedValueOnce(new PalisadeError('not_found', 'secret not found'));
    await expect(k.remove('acme', SECRET)).resolves.toBeUndefined();
  });

  it("names keys by provider id in the vault's alphabet, hashing ids it cannot hold", () => {
    expect(vaultNameOf('cloud-1.eu')).toBe('llm-provider.cloud-1.eu');
    expect(vaultNameOf('Azure/EU:west')).toMatch(/^llm-provider\.h-[0-9a-f]{32}$/);
    expect(vaultNameOf('Azure/EU:west')).not.toBe(vaultNameOf('azure/eu:west'));
  });
});
