import { createHash, randomBytes } from 'node:crypto';

const LEASE_TOKEN = /^pl_[A-Za-z0-9_-]{43}$/;

/** A new lease token `pl_…` (256 random bits); only its SHA-256 is stored. */
export const newLeaseToken = (): string => `pl_${randomBytes(32).toString('base64url')}`;

export const isLeaseToken = (token: string): boolean => LEASE_TOKEN.test(token);

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
