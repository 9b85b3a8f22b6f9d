import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { PalisadeError } from '@palisade/contracts';

/**
 * Envelope encryption of one secret version: a fresh data key per version, authenticated
 * encryption with associated data that names the tenant, the secret, the version and the
 * cipher, so a ciphertext moved to another row (or another tenant) fails to decrypt.
 * node:crypto only.
 *
 * - `aes-256-gcm`: AES-256-GCM, 96-bit random IV, 128-bit tag.
 * - `sm4`: national algorithms only (GB/T 32907 SM4, GB/T 32905 SM3), built from the
 *   runtime's primitives because OpenSSL has no SM4-GCM here: SM4-CTR, then HMAC-SM3 over
 *   AAD ‖ IV ‖ ciphertext ‖ bit length of the AAD (64-bit big-endian, as RFC 7518 §5.2.2.1),
 *   encrypt-then-MAC; the SM4 key (16 bytes) and the MAC key (32 bytes) are derived from
 *   the 32-byte data key with HKDF-SM3 under two distinct labels; the 32-byte tag is
 *   compared in constant time before anything is decrypted. 128-bit random IV.
 */
export const CIPHERS = ['aes-256-gcm', 'sm4'] as const;
export type CipherName = (typeof CIPHERS)[number];

const SPEC: Record<CipherName, { keyBytes: number; ivBytes: number; tagBytes: number }> = {
  'aes-256-gcm': { keyBytes: 32, ivBytes: 12, tagBytes: 16 },
  sm4: { keyBytes: 32, ivBytes: 16, tagBytes: 32 },
};

/** HKDF-SM3 labels of the two keys of the `sm4` construction (never the same key for both jobs). */
export const SM4_ENCRYPTION_INFO = 'palisade/sm4-ctr-hmac-sm3/v1/encryption';
export const SM4_MAC_INFO = 'palisade/sm4-ctr-hmac-sm3/v1/mac';

const availability = new Map<CipherName, boolean>();

/**
 * Whether this runtime's OpenSSL provides what the cipher needs. Asked of OpenSSL itself
 * (an actual encryption and decryption), not only of getCiphers(), which may list a name
 * the build lacks.
 */
export function cipherAvailable(cipher: CipherName): boolean {
  let known = availability.get(cipher);
  if (known === undefined) {
    try {
      const key = Buffer.alloc(SPEC[cipher].keyBytes, 7);
      const probe = Buffer.from('probe');
      const sealed = sealWith(cipher, key, probe, probe);
      known = openWith(cipher, key, sealed, probe).equals(probe);
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
  return { cipher, ...sealWith(cipher, dataKey, plaintext, canonicalAad(bindingContext(binding, cipher))) };
}

/** Decrypts, or throws 'internal' without detail when the tag does not verify. */
export function open(sealed: SealedValue, dataKey: Buffer, binding: SecretBinding): Buffer {
  try {
    return openWith(sealed.cipher, dataKey, sealed, canonicalAad(bindingContext(binding, sealed.cipher)));
  } catch {
    throw new PalisadeError('internal', 'secret ciphertext does not verify under its binding');
  }
}

type Sealed = Pick<SealedValue, 'iv' | 'ciphertext' | 'tag'>;

function sealWith(cipher: CipherName, key: Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  if (cipher === 'sm4') return sm4Seal(key, plaintext, aad);
  const spec = SPEC[cipher];
  const iv = randomBytes(spec.ivBytes);
  const c = createCipheriv(cipher, key, iv, { authTagLength: spec.tagBytes });
  c.setAAD(aad);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv, ciphertext, tag: c.getAuthTag() };
}

function openWith(cipher: CipherName, key: Buffer, sealed: Sealed, aad: Buffer): Buffer {
  if (cipher === 'sm4') return sm4Open(key, sealed, aad);
  const spec = SPEC[cipher];
  const d = createDecipheriv(cipher, key, sealed.iv, { authTagLength: spec.tagBytes });
  d.setAAD(aad);
  d.setAuthTag(sealed.tag);
  return Buffer.concat([d.update(sealed.ciphertext), d.final()]);
}

// ------------------------------------------------------- sm4: SM4-CTR + HMAC-SM3

/** The SM4 key and the MAC key of a data key (or KEK): HKDF-SM3, distinct labels, no salt. */
function sm4Keys(key: Buffer): { encryption: Buffer; mac: Buffer } {
  if (key.length < 16) throw new Error('sm4: the key must hold at least 16 bytes');
  return {
    encryption: Buffer.from(hkdfSync('sm3', key, Buffer.alloc(0), SM4_ENCRYPTION_INFO, 16)),
    mac: Buffer.from(hkdfSync('sm3', key, Buffer.alloc(0), SM4_MAC_INFO, 32)),
  };
}

/** HMAC-SM3 over AAD ‖ IV ‖ ciphertext ‖ AAD length in bits (uint64 big-endian). */
function sm4Tag(macKey: Buffer, aad: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  const aadBits = Buffer.alloc(8);
  aadBits.writeBigUInt64BE(BigInt(aad.length) * 8n);
  return createHmac('sm3', macKey).update(aad).update(iv).update(ciphertext).update(aadBits).digest();
}

export function sm4Seal(key: Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  const { encryption, mac } = sm4Keys(key);
  try {
    const iv = randomBytes(SPEC.sm4.ivBytes);
    const c = createCipheriv('sm4-ctr', encryption, iv);
    const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
    return { iv, ciphertext, tag: sm4Tag(mac, aad, iv, ciphertext) };
  } finally {
    encryption.fill(0);
    mac.fill(0);
  }
}

/** Checks the tag (constant time) before decrypting; throws when it does not verify. */
export function sm4Open(key: Buffer, sealed: Sealed, aad: Buffer): Buffer {
  const { encryption, mac } = sm4Keys(key);
  try {
    if (sealed.iv.length !== SPEC.sm4.ivBytes) throw new Error('sm4: bad IV length');
    const expected = sm4Tag(mac, aad, sealed.iv, sealed.ciphertext);
    if (sealed.tag.length !== expected.length || !timingSafeEqual(sealed.tag, expected)) throw new Error('sm4: tag does not verify');
    const d = createDecipheriv('sm4-ctr', encryption, sealed.iv);
    return Buffer.concat([d.update(sealed.ciphertext), d.final()]);
  } finally {
    encryption.fill(0);
    mac.fill(0);
  }
}

// ------------------------------------------------------------ key wrapping

/**
 * A key under a key-encryption key, for providers that hold the key material themselves
 * (local): iv ‖ tag ‖ ciphertext with the cipher's sizes (aes-256-gcm: 12 ‖ 16 ‖ n;
 * sm4: 16 ‖ 32 ‖ n), bound to `aad`.
 */
export function wrapKey(cipher: CipherName, kek: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const { iv, tag, ciphertext } = sealWith(cipher, kek, plaintext, aad);
  return Buffer.concat([iv, tag, ciphertext]);
}

export function unwrapKey(cipher: CipherName, kek: Buffer, wrapped: Buffer, aad: Buffer): Buffer {
  const { ivBytes, tagBytes } = SPEC[cipher];
  if (wrapped.length < ivBytes + tagBytes) throw new PalisadeError('internal', 'wrapped key is truncated');
  return openWith(cipher, kek, { iv: wrapped.subarray(0, ivBytes), tag: wrapped.subarray(ivBytes, ivBytes + tagBytes), ciphertext: wrapped.subarray(ivBytes + tagBytes) }, aad);
}

/** The cipher a binding context names (the data key is wrapped with the same construction as the value). */
export function cipherOfContext(context: Record<string, string>): CipherName {
  return context.cipher === 'sm4' ? 'sm4' : 'aes-256-gcm';
}
