import { PalisadeError } from '@palisade/contracts';
import type { CipherName } from '../crypto/envelope';

/**
 * Where key-encryption keys live. A KEK never leaves its provider (local keeps it
 * encrypted under a master key file; PKCS#11 and KMS keep it in the HSM / KMS): the
 * vault hands it data keys to wrap and wrapped data keys to unwrap, with a context
 * (tenant, secret, version, cipher) the provider binds as associated data / KMS
 * encryption context, so a wrapped key moved to another row does not unwrap.
 */
export const KEY_PROVIDERS = ['local', 'pkcs11', 'aws-kms'] as const;
export type KeyProviderName = (typeof KEY_PROVIDERS)[number];

/**
 * Which ciphers a provider's KEKs can wrap data keys with, known without asking the
 * provider, so that a tenant (key ring provisioning, cipher change, rotation) or a
 * deployment (CREDENTIAL_DEFAULT_CIPHER at boot) is refused at configuration time, never
 * at the first read. `undefined` when supported, else the reason, naming the mechanism.
 */
export function cipherUnsupportedReason(provider: KeyProviderName, cipher: CipherName): string | undefined {
  if (cipher !== 'sm4') return undefined;
  if (provider === 'pkcs11') {
    return (
      'the pkcs11 key provider cannot hold SM4 key-encryption keys: wrapping with SM4-CTR + HMAC-SM3 needs SM4 key generation and ' +
      'SM4-CTR / HMAC-SM3 mechanisms on the token, which PKCS#11 3.x does not define (vendors add their own CKM_VENDOR_DEFINED ones; ' +
      'SoftHSM2 has none) and this provider uses only CKK_AES with CKM_AES_KEY_GEN and CKM_AES_GCM; use the local provider for sm4 tenants'
    );
  }
  if (provider === 'aws-kms') {
    return 'the aws-kms key provider cannot hold SM4 key-encryption keys: KMS symmetric keys (SYMMETRIC_DEFAULT) encrypt with AES-256-GCM only; use the local provider for sm4 tenants';
  }
  return undefined;
}

/** Throws a 400 when `provider` cannot wrap data keys of `cipher`. */
export function requireProviderCipher(provider: KeyProviderName, cipher: CipherName): void {
  const reason = cipherUnsupportedReason(provider, cipher);
  if (reason) throw new PalisadeError('validation', `cipher: ${cipher} with provider ${provider}: ${reason}`);
}

/** What a new KEK will wrap: the local provider seals an sm4 tenant's KEK with SM4 too. */
export interface KeyOptions {
  cipher?: CipherName;
}

export interface KeyProvider {
  readonly name: KeyProviderName;
  /** A new KEK generated inside the provider; returns its reference (label, key id, ARN). */
  generateKey(label: string, options?: KeyOptions): Promise<string>;
  /** BYOK import: the tenant's key material becomes a KEK inside the provider. */
  importKey(label: string, material: Buffer, options?: KeyOptions): Promise<string>;
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
