import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** `palisade_<24 hex: key id>_<43 base64url: 256-bit secret>`: recognisable by secret scanners, self-locating, only hashed at rest. */
export const API_KEY_PREFIX = 'palisade_';
const API_KEY = /^palisade_([0-9a-f]{24})_([A-Za-z0-9_-]{43})$/;

export const newApiKeyId = () => randomBytes(12).toString('hex');

export function newApiKeySecret(keyId: string): { apiKey: string; hash: Buffer } {
  const apiKey = `${API_KEY_PREFIX}${keyId}_${randomBytes(32).toString('base64url')}`;
  return { apiKey, hash: hashApiKey(apiKey) };
}

export const hashApiKey = (apiKey: string) => createHash('sha256').update(apiKey).digest();

/** The key id of a well-formed API key, else undefined. */
export function apiKeyIdOf(apiKey: string): string | undefined {
  return API_KEY.exec(apiKey)?.[1];
}

/** Whether the key's digest is among the stored ones, in constant time for each. */
export function matchesAny(apiKey: string, stored: readonly Buffer[]): boolean {
  const candidate = hashApiKey(apiKey);
  let ok = false;
  for (const s of stored) if (s.length === candidate.length && timingSafeEqual(s, candidate)) ok = true;
  return ok;
}

/** Session id of tokens exchanged for an API key: revoking the key revokes them (RevocationIssuer). */
export const apiKeySessionId = (keyId: string) => `apikey-${keyId}`;
