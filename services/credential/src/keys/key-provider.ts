/**
 * Where key-encryption keys live. A KEK never leaves its provider (local keeps it
 * encrypted under a master key file; PKCS#11 and KMS keep it in the HSM / KMS): the
 * vault hands it data keys to wrap and wrapped data keys to unwrap, with a context
 * (tenant, secret, version, cipher) the provider binds as associated data / KMS
 * encryption context, so a wrapped key moved to another row does not unwrap.
 */
export const KEY_PROVIDERS = ['local', 'pkcs11', 'aws-kms'] as const;
export type KeyProviderName = (typeof KEY_PROVIDERS)[number];

export interface KeyProvider {
  readonly name: KeyProviderName;
  /** A new KEK generated inside the provider; returns its reference (label, key id, ARN). */
  generateKey(label: string): Promise<string>;
  /** BYOK import: the tenant's key material becomes a KEK inside the provider. */
  importKey(label: string, material: Buffer): Promise<string>;
  /** BYOK reference: a key the tenant controls; throws when the provider cannot use it. */
  verifyReference(keyRef: string): Promise<void>;
  wrap(keyRef: string, dataKey: Buffer, context: Record<string, string>): Promise<Buffer>;
  unwrap(keyRef: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer>;
  /** Irreversibly destroys the KEK (crypto-shredding, revocation of a managed key). */
  destroyKey(keyRef: string): Promise<void>;
  close(): Promise<void>;
}

/** The providers a running vault has, by name. */
export interface KeyProviders {
  get(name: KeyProviderName): KeyProvider;
  names(): KeyProviderName[];
  closeAll(): Promise<void>;
}

export function keyProviders(list: readonly KeyProvider[]): KeyProviders {
  const byName = new Map(list.map((p) => [p.name, p]));
  return {
    get(name) {
      const provider = byName.get(name);
      if (!provider) throw new KeyProviderUnavailable(name);
      return provider;
    },
    names: () => [...byName.keys()],
    closeAll: async () => {
      for (const p of byName.values()) await p.close();
    },
  };
}

import { PalisadeError } from '@palisade/contracts';

export class KeyProviderUnavailable extends PalisadeError {
  constructor(name: string) {
    super('validation', `provider: key provider ${name} is not enabled on this vault`);
  }
}

/** A KEK that is gone, disabled or refuses: the secrets under it are unreadable. */
export class KeyUnusable extends PalisadeError {
  constructor(reason: string) {
    super('illegal_state', `key-encryption key is not usable: ${reason}`);
  }
}
