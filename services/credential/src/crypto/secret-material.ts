import { PalisadeError } from '@palisade/contracts';
import type { KekRow, KeyringRow, VersionMaterial } from '../credential.repository';
import type { Clock } from '../credential.settings';
import type { KeyProviders } from '../keys/key-provider';
import type { CiphertextStore } from '../storage/ciphertext-store';
import { bindingContext, newDataKey, open, seal, type SecretBinding } from './envelope';

/**
 * Envelope encryption of secret versions with the tenant's KEK: seal under a fresh data
 * key, wrap the data key in the key provider, store the ciphertext; and the way back.
 * Network calls (key provider, external storage): never inside a database transaction.
 */
export class SecretMaterial {
  constructor(
    private readonly providers: Pick<KeyProviders, 'get'>,
    private readonly storage: CiphertextStore,
    private readonly now: Clock,
  ) {}

  get storageBackend(): CiphertextStore['backend'] {
    return this.storage.backend;
  }

  /** Seals `value` for `binding` under the ring's current KEK and stores the ciphertext. */
  async encrypt(binding: SecretBinding, ring: KeyringRow, value: Buffer): Promise<VersionMaterial> {
    const kek = ring.keys.find((k) => k.version === ring.currentVersion)!;
    if (kek.state === 'revoked') throw new PalisadeError('illegal_state', "the tenant's current key-encryption key is revoked: rotate the key ring first");
    const cipher = ring.cipher;
    const dek = newDataKey(cipher);
    try {
      const sealed = seal(cipher, dek, value, binding);
      const wrappedDek = await this.providers.get(kek.provider).wrap(kek.keyRef, dek, bindingContext(binding, cipher));
      const stored = await this.storage.put(binding, sealed);
      return { ...binding, cipher, kekVersion: kek.version, wrappedDek, stored, createdAt: this.now() };
    } finally {
      dek.fill(0);
    }
  }

  async decrypt(material: VersionMaterial, kek: KekRow, binding: SecretBinding): Promise<Buffer> {
    const sealed = await this.storage.get(material.stored);
    const dek = await this.providers.get(kek.provider).unwrap(kek.keyRef, material.wrappedDek, bindingContext(binding, material.cipher));
    try {
      return open(sealed, dek, binding);
    } finally {
      dek.fill(0);
    }
  }

  /** Deletes a stored ciphertext (external storage: without recovery). */
  destroy(material: Pick<VersionMaterial, 'stored'>): Promise<void> {
    return this.storage.destroy(material.stored);
  }
}
