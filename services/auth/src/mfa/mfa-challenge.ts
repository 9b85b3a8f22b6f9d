import { createHash, randomBytes } from 'node:crypto';
import { PalisadeError } from '@palisade/contracts';
import type { Transactions } from '../transactions';
import type { SignInMethod } from '../users/users.events';
import type { ChallengePurpose, MfaRepository } from './mfa.repository';

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
  transactions: Transactions,
  challenges: Pick<MfaRepository, 'createChallenge'>,
  c: { tenantId: string; userId: string; purpose: ChallengePurpose; audience: string[]; method: SignInMethod },
  now: Date,
): Promise<{ token: string; expiresIn: number }> {
  const token = `pmc_${randomBytes(32).toString('base64url')}`;
  await transactions.inTransaction((tx) => challenges.createChallenge(tx, hashChallengeToken(token), c, new Date(now.getTime() + CHALLENGE_TTL_SEC * 1000)));
  return { token, expiresIn: CHALLENGE_TTL_SEC };
}

/**
 * Which second-factor step a sign-in with good first-factor credentials needs: `verify`
 * (the user's enrolled factor), `enrol` (none yet, and the tenant makes it mandatory:
 * the one-time enrolment grant) or none. A mandatory tenant asks it of every method,
 * OIDC and SAML included (the identity provider's own MFA is not ours to vouch for);
 * otherwise an enrolled user's password and LDAP sign-ins need it, OIDC and SAML rely
 * on the provider.
 */
export function secondFactorStep(method: SignInMethod, user: { mfaEnrolled: boolean }, tenant: { mfaRequired: boolean }): ChallengePurpose | undefined {
  const ours = method === 'password' || method === 'ldap';
  if (!tenant.mfaRequired && !(ours && user.mfaEnrolled)) return undefined;
  return user.mfaEnrolled ? 'verify' : 'enrol';
}

/**
 * Enrolling a second factor with an ordinary access token (`/v1/me/mfa/totp`) is for
 * tenants where it is optional. Where it is mandatory, a user without one holds no token
 * that proves more than a password (or an identity provider's word), so enrolment goes
 * only through the one-time enrolment grant a sign-in hands out (single use, 5 minutes,
 * bound to that sign-in): 403 otherwise.
 */
export function assertSessionEnrolmentAllowed(tenant: { mfaRequired: boolean }): void {
  if (tenant.mfaRequired) {
    throw new PalisadeError('forbidden', 'two-factor authentication is mandatory in this tenant: enrol with the one-time enrolment grant (mfaToken) a sign-in returns');
  }
}
