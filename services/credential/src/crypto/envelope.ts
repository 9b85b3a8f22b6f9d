import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { PalisadeError } from '@palisade/contracts';

/**
 * Envelope encryption of one secret version: a fresh 256-bit data key per version,
 * AEAD with associated data that names the tenant, the secret, the version and the
 * cipher, so a ciphertext moved to another row (or another tenant) fails to decrypt.
 * node:crypto only.
 */
export const CIPHERS = ['aes-256-gcm', 'sm4-gcm'] as const;
export type CipherName = (typeof CIPHERS)[number];
/** Node's typings know GCM by the AES names only; SM4-GCM takes the same options. */
type GcmName = 'aes-256-gcm';

const SPEC: Record<CipherName, { keyBytes: number; ivBytes: number; tagBytes: number }> = {
  'aes-256-gcm': { keyBytes: 32, ivBytes: 12, tagBytes: 16 },
  'sm4-gcm': { keyBytes: 16, ivBytes: 12, tagBytes: 16 },
};

const availability = new Map<CipherName, boolean>();

/**
 * Whether this runtime's OpenSSL provides the cipher. Asked of OpenSSL itself (an
 * actual encryption), not only of getCiphers(), which may list a name the build lacks
 * or miss one a provider adds.
 */
export function cipherAvailable(cipher: CipherName): boolean {
  let known = availability.get(cipher);
  if (known === undefined) {
    try {
      const spec = SPEC[cipher];
      const c = createCipheriv(cipher as GcmName, Buffer.alloc(spec.keyBytes), Buffer.alloc(spec.ivBytes), { authTagLength: spec.tagBytes });
      c.setAAD(Buffer.from('probe'));
      c.update('probe');
      c.final();
      known = c.getAuthTag().length === spec.tagBytes;
    } catch {
      known = false;
    }
    availability.set(cipher, known);
  }
  return known;
}

export function availableCiphers(): CipherName[] {
  return CIPHERS.filter(cipherAvailable);
}

/** Why a cipher cannot be used here, for a 400 that names the cause. */
export function requireCipher(cipher: CipherName): void {
  if (!cipherAvailable(cipher)) {
    throw new PalisadeError(
      'validation',
      `cipher: ${cipher} is not provided by this runtime's OpenSSL ${process.versions.openssl} (available: ${availableCiphers().join(', ')})`,
    );
  }
}

/** What binds a ciphertext to its place. Canonical: fixed member order. */
export interface SecretBinding {
  tenantId: string;
  secretId: string;
  version: number;
}

export function bindingContext(b: SecretBinding, cipher: CipherName): Record<string, string> {
  return { palisade: 'credential.secret.v1', tenantId: b.tenantId, secretId: b.secretId, version: String(b.version), cipher };
}

/** Canonical bytes of a context map (sorted keys, JSON): the AAD. */
export function canonicalAad(context: Record<string, string>): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]]);
  return Buffer.from(JSON.stringify(sorted), 'utf8');
}

export interface SealedValue {
  cipher: CipherName;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

export function newDataKey(cipher: CipherName): Buffer {
  return randomBytes(SPEC[cipher].keyBytes);
}

export function seal(cipher: CipherName, dataKey: Buffer, plaintext: Buffer, binding: SecretBinding): SealedValue {
  requireCipher(cipher);
  const spec = SPEC[cipher];
  const iv = randomBytes(spec.ivBytes);
  const c = createCipheriv(cipher as GcmName, dataKey, iv, { authTagLength: spec.tagBytes });
  c.setAAD(canonicalAad(bindingContext(binding, cipher)));
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return { cipher, iv, ciphertext, tag: c.getAuthTag() };
}

/** Decrypts, or throws 'internal' without detail when the tag does not verify. */
export function open(sealed: SealedValue, dataKey: Buffer, binding: SecretBinding): Buffer {
  const spec = SPEC[sealed.cipher];
  try {
    const d = createDecipheriv(sealed.cipher as GcmName, dataKey, sealed.iv, { authTagLength: spec.tagBytes });
    d.setAAD(canonicalAad(bindingContext(binding, sealed.cipher)));
    d.setAuthTag(sealed.tag);
    return Buffer.concat([d.update(sealed.ciphertext), d.final()]);
  } catch {
    throw new PalisadeError('internal', 'secret ciphertext does not verify under its binding');
  }
}

/**
 * AES-256-GCM under a key-encryption key, for providers that hold the key material
 * themselves (local): iv(12) || tag(16) || ciphertext.
 */
export function gcmWrap(key: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]);
}

export function gcmUnwrap(key: Buffer, wrapped: Buffer, aad: Buffer): Buffer {
  if (wrapped.length < 28) throw new PalisadeError('internal', 'wrapped key is truncated');
  const d = createDecipheriv('aes-256-gcm', key, wrapped.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(wrapped.subarray(12, 28));
  return Buffer.concat([d.update(wrapped.subarray(28)), d.final()]);
}

