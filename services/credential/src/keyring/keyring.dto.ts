import { z } from 'zod';
import { CIPHERS } from '../crypto/envelope';
import { KEY_PROVIDERS } from '../keys/key-provider';

/** BYOK: 32 bytes of AES-256 key material (base64), or a reference to a key the tenant controls. */
const byok = z.union([
  z.strictObject({ material: z.base64('must be base64').refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes (AES-256)') }),
  z.strictObject({ keyRef: z.string().min(1).max(2048) }),
]);

export const provisionKeyringSchema = z.strictObject({
  provider: z.enum(KEY_PROVIDERS).optional(),
  cipher: z.enum(CIPHERS).optional(),
  byok: byok.optional(),
});

export const rotateKeyringSchema = z.strictObject({
  provider: z.enum(KEY_PROVIDERS).optional(),
  byok: byok.optional(),
  reason: z.string().min(1).max(500).optional(),
});

export const revokeKeySchema = z.strictObject({ reason: z.string().min(1).max(500) });
export const cipherSchema = z.strictObject({ cipher: z.enum(CIPHERS) });
export const keyVersionSchema = z.coerce.number().int().min(1).max(1_000_000);
