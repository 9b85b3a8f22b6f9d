import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
  type SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import { PalisadeError } from '@palisade/contracts';
import type { CipherName, SealedValue, SecretBinding } from '../crypto/envelope';

export const STORAGE_BACKENDS = ['postgres', 'aws-secrets-manager'] as const;
export type StorageBackend = (typeof STORAGE_BACKENDS)[number];

/** What a secret version row keeps: the sealed value itself, or where it is. */
export type StoredCiphertext =
  | { storage: 'postgres'; sealed: SealedValue }
  | { storage: 'aws-secrets-manager'; cipher: CipherName; ref: string };

/**
 * Where ciphertexts live. Only ciphertext ever reaches a backend: data keys stay
 * wrapped in the vault's own tables, KEKs in their provider.
 */
export interface CiphertextStore {
  readonly backend: StorageBackend;
  put(binding: SecretBinding, sealed: SealedValue): Promise<StoredCiphertext>;
  get(stored: StoredCiphertext): Promise<SealedValue>;
  destroy(stored: StoredCiphertext): Promise<void>;
}

/** The default: the ciphertext sits in the secret version row (PostgreSQL). */
export class PostgresCiphertextStore implements CiphertextStore {
  readonly backend = 'postgres' as const;

  async put(_binding: SecretBinding, sealed: SealedValue): Promise<StoredCiphertext> {
    return { storage: 'postgres', sealed };
  }

  async get(stored: StoredCiphertext): Promise<SealedValue> {
    if (stored.storage !== 'postgres') throw new PalisadeError('internal', 'ciphertext is not in PostgreSQL');
    return stored.sealed;
  }

  async destroy(): Promise<void> {
    // The row is deleted by the caller, in its transaction.
  }
}

export interface SecretsManagerStoreOptions {
  region: string;
  endpoint?: string;
  credentials?: SecretsManagerClientConfig['credentials'];
  /** Name prefix of the secrets the vault writes. */
  prefix?: string;
}

/**
 * AWS Secrets Manager (or anything speaking its JSON protocol) holds the ciphertext:
 * one secret per version, named <prefix>/<tenant>/<secret id>/v<version>, whose value
 * is the sealed value (cipher, iv, ciphertext, tag; base64), never the plaintext.
 * Shredding deletes it without a recovery window.
 */
export class SecretsManagerCiphertextStore implements CiphertextStore {
  readonly backend = 'aws-secrets-manager' as const;
  private readonly client: SecretsManagerClient;

  constructor(private readonly options: SecretsManagerStoreOptions) {
    this.client = new SecretsManagerClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: 3,
    });
  }

  async put(b: SecretBinding, sealed: SealedValue): Promise<StoredCiphertext> {
    const name = `${this.options.prefix ?? 'palisade'}/${b.tenantId}/${b.secretId}/v${b.version}`;
    const value = JSON.stringify({
      v: 1,
      cipher: sealed.cipher,
      iv: sealed.iv.toString('base64'),
      ciphertext: sealed.ciphertext.toString('base64'),
      tag: sealed.tag.toString('base64'),
    });
    await this.call(() => this.client.send(new CreateSecretCommand({ Name: name, SecretString: value, Description: 'Palisade vault ciphertext (envelope-encrypted)' })));
    return { storage: 'aws-secrets-manager', cipher: sealed.cipher, ref: name };
  }

  async get(stored: StoredCiphertext): Promise<SealedValue> {
    if (stored.storage !== 'aws-secrets-manager') throw new PalisadeError('internal', 'ciphertext is not in Secrets Manager');
    const out = await this.call(() => this.client.send(new GetSecretValueCommand({ SecretId: stored.ref })));
    const parsed = JSON.parse(out.SecretString ?? '{}') as { cipher: CipherName; iv: string; ciphertext: string; tag: string };
    if (parsed.cipher !== stored.cipher) throw new PalisadeError('internal', 'ciphertext in Secrets Manager does not match its row');
    return {
      cipher: parsed.cipher,
      iv: Buffer.from(parsed.iv, 'base64'),
      ciphertext: Buffer.from(parsed.ciphertext, 'base64'),
      tag: Buffer.from(parsed.tag, 'base64'),
    };
  }

  async destroy(stored: StoredCiphertext): Promise<void> {
    if (stored.storage !== 'aws-secrets-manager') return;
    try {
      await this.client.send(new DeleteSecretCommand({ SecretId: stored.ref, ForceDeleteWithoutRecovery: true }));
    } catch (error) {
      if ((error as { name?: string }).name === 'ResourceNotFoundException') return;
      throw new PalisadeError('unavailable', `Secrets Manager did not delete the ciphertext (${(error as { name?: string }).name ?? 'error'})`);
    }
  }

  close(): void {
    this.client.destroy();
  }

  private async call<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      const name = (error as { name?: string }).name ?? 'network error';
      if (name === 'ResourceNotFoundException') throw new PalisadeError('illegal_state', 'the ciphertext is gone from Secrets Manager');
      throw new PalisadeError('unavailable', `Secrets Manager did not answer (${name})`);
    }
  }
}
