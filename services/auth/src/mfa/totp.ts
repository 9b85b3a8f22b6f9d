import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

/** RFC 6238 parameters every authenticator app understands: SHA-1, 6 digits, 30 s. */
const PERIOD = 30;
const DIGITS = 6;

export const RECOVERY_CODE_COUNT = 10;
/** 16 characters of a 32-letter alphabet: 80 bits, shown as xxxx-xxxx-xxxx-xxxx. */
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford's base32: 32 letters, no bias
export const RECOVERY_CODE = /^[0-9a-hjkmnp-tv-z]{4}(-?[0-9a-hjkmnp-tv-z]{4}){3}$/i;

export function newTotpSecret(): Buffer {
  return randomBytes(20);
}

function totpOf(secret: Buffer, label = 'user', issuer = 'Palisade'): TOTP {
  return new TOTP({ issuer, label, algorithm: 'SHA1', digits: DIGITS, period: PERIOD, secret: new Secret({ buffer: new Uint8Array(secret).buffer }) });
}

/** What the user types into an authenticator: base32 secret and the otpauth:// URI (for a QR code). */
export function enrolmentOf(secret: Buffer, label: string, issuer: string): { secret: string; otpauthUri: string } {
  const totp = totpOf(secret, label, issuer);
  return { secret: totp.secret.base32, otpauthUri: totp.toString() };
}

/**
 * The RFC 6238 time step a code is valid for (one step of clock drift either way), or
 * undefined. The caller refuses a step at or before the last one used (no replay).
 */
export function totpStep(secret: Buffer, code: string, now: Date): number | undefined {
  const delta = totpOf(secret).validate({ token: code, timestamp: now.getTime(), window: 1 });
  return delta === null ? undefined : Math.floor(now.getTime() / 1000 / PERIOD) + delta;
}

/** For tests and tools: the code of an instant. */
export function totpCode(secret: Buffer | string, now: Date): string {
  const s = typeof secret === 'string' ? Secret.fromBase32(secret) : new Secret({ buffer: new Uint8Array(secret).buffer });
  return new TOTP({ algorithm: 'SHA1', digits: DIGITS, period: PERIOD, secret: s }).generate({ timestamp: now.getTime() });
}

/** Fresh recovery codes (shown once) in the xxxx-xxxx-xxxx-xxxx form. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = randomBytes(16);
    const chars = [...bytes].map((b) => RECOVERY_ALPHABET[b % RECOVERY_ALPHABET.length]).join('');
    return chars.match(/.{4}/g)!.join('-');
  });
}

/**
 * Recovery codes are stored as HMAC-SHA-256 under a key derived from the key-encryption
 * key: a stolen table cannot be brute-forced offline without that key.
 */
export class RecoveryCodeHasher {
  private readonly key: Buffer;

  constructor(keyEncryptionKey: Buffer) {
    this.key = Buffer.from(hkdfSync('sha256', keyEncryptionKey, Buffer.alloc(0), 'palisade-auth recovery codes v1', 32));
  }

  hash(tenantId: string, userId: string, code: string): Buffer {
    const normalized = code.toLowerCase().replace(/-/g, '');
    return createHmac('sha256', this.key).update(`${tenantId}\u0000${userId}\u0000${normalized}`).digest();
  }

  /** The stored digest that matches, compared in constant time against every candidate. */
  match(candidate: Buffer, stored: readonly Buffer[]): Buffer | undefined {
    let found: Buffer | undefined;
    for (const s of stored) if (s.length === candidate.length && timingSafeEqual(s, candidate)) found = s;
    return found;
  }
}
