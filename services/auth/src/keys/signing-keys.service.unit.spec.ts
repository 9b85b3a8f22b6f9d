import { randomBytes } from 'node:crypto';
import type { EventStore, Transaction } from '@palisade/eventsourcing';
import { seal } from '../crypto/key-encryption';
import { KeyRing } from './signing-keys.service';
import type { SigningKeysRepository, StoredSigningKey } from './signing-keys.repository';

describe('KeyRing with another key-encryption key than the stored keys were wrapped with', () => {
  it('refuses to start with a message an operator can act on, naming the setting and the key', async () => {
    const stored = [
      { kid: 'k-active', status: 'active', privateKey: seal(randomBytes(32), Buffer.from('not a key'), 'k-active'), publicJwk: {} },
      { kid: 'k-next', status: 'next', privateKey: Buffer.alloc(0), publicJwk: {} },
    ] as unknown as StoredSigningKey[];
    const repository = { lock: async () => undefined, all: async () => stored } as unknown as SigningKeysRepository;
    const store = { inTransaction: <T>(work: (tx: Transaction) => Promise<T>) => work({} as Transaction) } as unknown as EventStore;
    const ring = new KeyRing({
      store,
      repository,
      revocations: {} as never,
      eventContext: {} as never,
      keyEncryptionKey: randomBytes(32),
      rotationPeriodMs: 86_400_000,
      retiredKeysPublishedMs: 3_600_000,
    });
    await expect(ring.start()).rejects.toThrow('the configured key-encryption key (AUTH_KEY_ENCRYPTION_KEY[_FILE]) is not the one that wrapped the stored signing key k-active');
  });
});
