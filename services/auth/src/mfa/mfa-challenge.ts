import { createHash, randomBytes } from 'node:crypto';
import type { AuthRuntime } from '../auth.runtime';
import type { SignInMethod } from '../users/users.events';
import type { ChallengePurpose } from './mfa.repository';

/** Lifetime of the token between a good password and the second factor (or enrolment). */
export const CHALLENGE_TTL_SEC = 300;
/** Codes tried against one challenge before it is burnt (each also counts in the lockout). */
export const CHALLENGE_MAX_ATTEMPTS = 5;

const CHALLENGE_TOKEN = /^pmc_[A-Za-z0-9_-]{43}$/;

export const hashChallengeToken = (token: string) => createHash('sha256').update(token).digest();
export const isChallengeTokenShaped = (token: string) => CHALLENGE_TOKEN.test(token);

/**
 * A single-use, short-lived token `pmc_<256 bits>` that lets its holder complete one
 * sign-in with the second factor (`verify`) or enrol one first (`enrol`). Only its SHA-256
 * is stored; it is good for nothing else (it is not an access token).
 */
export async function issueChallenge(
  rt: Pick<AuthRuntime, 'read' | 'mfaRepo'>,
  c: { tenantId: string; userId: string; purpose: ChallengePurpose; audience: string[]; method: SignInMethod },
  now: Date,
): Promise<{ token: string; expiresIn: number }> {
  const token = `pmc_${randomBytes(32).toString('base64url')}`;
  await rt.read((tx) => rt.mfaRepo.createChallenge(tx, hashChallengeToken(token), c, new Date(now.getTime() + CHALLENGE_TTL_SEC * 1000)));
  return { token, expiresIn: CHALLENGE_TTL_SEC };
}
