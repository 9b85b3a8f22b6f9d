import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM: iv (12) || ciphertext || tag (16), with associated data binding it to its use. */
export function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < IV_BYTES + TAG_BYTES) throw new Error('sealed value too short');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
}

/**
 * The key-encryption key (KEK): wraps the per-data-subject keys and the checkpoint
 * signing keys that the audit service keeps in PostgreSQL, so the database alone
 * never holds a usable key. Read from a file (32 random bytes, base64); in production
 * the file comes from a KMS/HSM-backed secret mount. Its value is never logged.
 */
export class KeyEncryptionKey {
  private constructor(private readonly key: Buffer) {}

  /** Read the KEK file, creating it (0600) when it does not exist yet. */
  static fromFile(path: string): { kek: KeyEncryptionKey; created: boolean } {
    let created = false;
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
      created = true;
    }
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`AUDIT_KEK_FILE ${path} must hold 32 bytes in base64`);
    return { kek: new KeyEncryptionKey(key), created };
  }

  static fromBytes(key: Buffer): KeyEncryptionKey {
    if (key.length !== 32) throw new Error('a KEK has 32 bytes');
    return new KeyEncryptionKey(Buffer.from(key));
  }

  wrap(plaintext: Buffer, aad: string): Buffer {
    return seal(this.key, plaintext, aad);
  }

  unwrap(wrapped: Buffer, aad: string): Buffer {
    return open(this.key, wrapped, aad);
  }

  /** Key check value: proves which KEK wrapped the stored keys without revealing it. */
  checkValue(): Buffer {
    return createHmac('sha256', this.key).update('palisade-audit-kek-check-v1').digest();
  }

  matches(checkValue: Buffer): boolean {
    const mine = this.checkValue();
    return checkValue.length === mine.length && timingSafeEqual(checkValue, mine);
  }

  toJSON(): string {
    return '[KEK]';
  }
}
