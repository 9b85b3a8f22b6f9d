import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { PalisadeError } from '@palisade/contracts';
import { cipherOfContext } from '../crypto/envelope';
import { KeyUnusable, requireProviderCipher, type KeyOptions, type KeyProvider } from './key-provider';

export interface AwsKmsKeyProviderOptions {
  region: string;
  /** A private endpoint (VPC endpoint, an on-premises KMS speaking the AWS protocol). */
  endpoint?: string;
  credentials?: KMSClientConfig['credentials'];
  /** Days before a destroyed key is deleted by KMS (7..30); it is disabled at once. */
  deletionWindowDays?: number;
}

const PREFIX = 'aws-kms:';
/** Errors that mean the key itself refuses: disabled, pending deletion, gone, not ours. */
const KEY_REFUSALS = new Set([
  'DisabledException',
  'KMSInvalidStateException',
  'NotFoundException',
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'AccessDeniedException',
  'KeyUnavailableException',
  'InvalidKeyUsageException',
]);

/**
 * KEKs in AWS KMS (or anything speaking its JSON protocol): symmetric keys used with
 * Encrypt/Decrypt, the binding context as the KMS encryption context. BYOK either
 * imports the tenant's material (Origin EXTERNAL, wrapped with RSAES-OAEP-SHA-256 to
 * the key's import public key) or references a key the tenant controls, whose
 * disabling makes its secrets unreadable at once.
 */
export class AwsKmsKeyProvider implements KeyProvider {
  readonly name = 'aws-kms' as const;
  private readonly kms: KMSClient;

  constructor(private readonly options: AwsKmsKeyProviderOptions) {
    this.kms = new KMSClient({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: 3,
    });
  }

  async generateKey(label: string, options: KeyOptions = {}): Promise<string> {
    requireProviderCipher(this.name, options.cipher ?? 'aes-256-gcm');
    const created = await this.call(() =>
      this.kms.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', Description: label })),
    );
    return PREFIX + created.KeyMetadata!.Arn!;
  }

  async importKey(label: string, material: Buffer, options: KeyOptions = {}): Promise<string> {
    requireProviderCipher(this.name, options.cipher ?? 'aes-256-gcm');
    if (material.length !== 32) throw new PalisadeError('validation', 'material: must be 32 bytes (AES-256)');
    const created = await this.call(() =>
      this.kms.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', Origin: 'EXTERNAL', Description: label })),
    );
    const keyId = created.KeyMetadata!.Arn!;
    const params = await this.call(() =>
      this.kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' })),
    );
    const encrypted = publicEncrypt(
      { key: createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      material,
    );
    await this.call(() =>
      this.kms.send(
        new ImportKeyMaterialCommand({
          KeyId: keyId,
          ImportToken: params.ImportToken,
          EncryptedKeyMaterial: encrypted,
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        }),
      ),
    );
    return PREFIX + keyId;
  }

  async verifyReference(keyRef: string): Promise<void> {
    const described = await this.call(() => this.kms.send(new DescribeKeyCommand({ KeyId: keyIdOf(keyRef) })));
    const meta = described.KeyMetadata;
    if (!meta?.Enabled || meta.KeyUsage !== 'ENCRYPT_DECRYPT' || meta.KeySpec !== 'SYMMETRIC_DEFAULT') {
      throw new PalisadeError('validation', 'keyRef: the KMS key must be an enabled symmetric ENCRYPT_DECRYPT key');
    }
  }

  async wrap(keyRef: string, dataKey: Buffer, context: Record<string, string>): Promise<Buffer> {
    requireProviderCipher(this.name, cipherOfContext(context));
    const out = await this.call(() =>
      this.kms.send(new EncryptCommand({ KeyId: keyIdOf(keyRef), Plaintext: dataKey, EncryptionContext: context })),
    );
    return Buffer.from(out.CiphertextBlob!);
  }

  async unwrap(keyRef: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const out = await this.call(() =>
      this.kms.send(new DecryptCommand({ KeyId: keyIdOf(keyRef), CiphertextBlob: wrapped, EncryptionContext: context })),
    );
    return Buffer.from(out.Plaintext!);
  }

  async destroyKey(keyRef: string): Promise<void> {
    const KeyId = keyIdOf(keyRef);
    const described = await this.call(() => this.kms.send(new DescribeKeyCommand({ KeyId })));
    if (described.KeyMetadata?.Origin === 'EXTERNAL') {
      await this.call(() => this.kms.send(new DeleteImportedKeyMaterialCommand({ KeyId })));
    }
    await this.call(() => this.kms.send(new DisableKeyCommand({ KeyId })));
    await this.call(() => this.kms.send(new ScheduleKeyDeletionCommand({ KeyId, PendingWindowInDays: this.options.deletionWindowDays ?? 7 })));
  }

  async close(): Promise<void> {
    this.kms.destroy();
  }

  private async call<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      if (error instanceof PalisadeError) throw error;
      const name = (error as { name?: string }).name ?? '';
      if (KEY_REFUSALS.has(name)) throw new KeyUnusable(`KMS refused: ${name}`);
      throw new PalisadeError('unavailable', `KMS did not answer (${name || 'network error'})`);
    }
  }
}

function keyIdOf(ref: string): string {
  if (!ref.startsWith(PREFIX) || ref.length <= PREFIX.length || ref.length > 2048) throw new KeyUnusable('not an aws-kms key reference');
  return ref.slice(PREFIX.length);
}
