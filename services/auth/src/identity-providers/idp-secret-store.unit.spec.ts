import { randomBytes } from 'node:crypto';
import { LocalSealedSecrets } from './idp-secret-store';

describe('local sealing of identity-provider secrets (development without the vault)', () => {
  const store = new LocalSealedSecrets(randomBytes(32));

  it('seals the value bound to tenant and provider: another provider’s row does not open', async () => {
    const stored = await store.put('acme', 'corp', 'bind-password-1');
    expect(stored.kind).toBe('sealed');
    expect(stored.kind === 'sealed' && stored.sealed.includes(Buffer.from('bind-password-1'))).toBe(false);
    await expect(store.read('acme', 'corp', stored)).resolves.toBe('bind-password-1');
    await expect(store.read('acme', 'okta', stored)).rejects.toThrow();
    await expect(store.read('globex', 'corp', stored)).rejects.toThrow();
  });

  it('cannot read a secret kept in the credential service, and says why without a value', async () => {
    await expect(store.read('acme', 'corp', { kind: 'vault', secretId: '01a20143-b6e6-72cb-8b2c-ba2513c57961', version: 1 })).rejects.toMatchObject({
      code: 'unavailable',
      message: expect.stringContaining('AUTH_IDP_SECRETS'),
    });
  });
});
