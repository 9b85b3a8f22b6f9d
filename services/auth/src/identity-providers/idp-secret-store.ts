import { PalisadeError } from '@palisade/contracts';
import { open, seal } from '../crypto/key-encryption';

/**
 * What auth's database keeps for a provider's secret (LDAP bind password, OIDC client
 * secret): the credential service's reference, or, without the vault (development), the
 * value sealed under auth's key-encryption key.
 */
export type StoredIdpSecret = { kind: 'vault'; secretId: string; version: number } | { kind: 'sealed'; sealed: Buffer };

/** Where identity-provider secrets live. Values never reach a log, an event or an error. */
export interface IdpSecretStore {
  /** Keeps the value; answers what auth stores in its place. */
  put(tenantId: string, providerId: string, value: string): Promise<StoredIdpSecret>;
  /** The value, for signing in through the provider. */
  read(tenantId: string, providerId: string, stored: StoredIdpSecret): Promise<string>;
  /** The provider was removed: destroy its secret. */
  remove(tenantId: string, providerId: string, stored: StoredIdpSecret): Promise<void>;
}

const context = (tenantId: string, providerId: string) => `idp:${tenantId}/${providerId}`;

/**
 * Development without the vault (AUTH_IDP_SECRETS=local): the value sealed with AES-256-GCM
 * under auth's key-encryption key, bound to tenant and provider. Reads are not audited.
 */
export class LocalSealedSecrets implements IdpSecretStore {
  constructor(private readonly keyEncryptionKey: Buffer) {}

  async put(tenantId: string, providerId: string, value: string): Promise<StoredIdpSecret> {
    return { kind: 'sealed', sealed: seal(this.keyEncryptionKey, Buffer.from(value, 'utf8'), context(tenantId, providerId)) };
  }

  async read(tenantId: string, providerId: string, stored: StoredIdpSecret): Promise<string> {
    if (stored.kind !== 'sealed') throw new PalisadeError('unavailable', 'this identity provider’s secret is kept in the credential service, and AUTH_IDP_SECRETS is not vault');
    return open(this.keyEncryptionKey, stored.sealed, context(tenantId, providerId)).toString('utf8');
  }

  /** The row goes with the provider (its projection deletes it). */
  async remove(): Promise<void> {}
}
