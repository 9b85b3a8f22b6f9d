import { PalisadeError, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler } from '@palisade/eventsourcing';
import type { AuthConfig } from '../auth.config';
import type { Transactions } from '../transactions';
import type { TenantsRepository } from '../tenants/tenants.repository';
import type { UserCommand, UserState } from '../users/users.decider';
import type { UserEvent } from '../users/users.events';
import { open, seal } from '../crypto/key-encryption';
import { INVALID, type SignInService, type TokenResponse } from '../sign-in/sign-in.service';
import type { UserRow, UsersRepository } from '../users/users.repository';
import { assertSessionEnrolmentAllowed, CHALLENGE_MAX_ATTEMPTS, hashChallengeToken, isChallengeTokenShaped } from './mfa-challenge';
import type { Challenge, ChallengePurpose, MfaRepository } from './mfa.repository';
import { enrolmentOf, newRecoveryCodes, newTotpSecret, RecoveryCodeHasher, RECOVERY_CODE_COUNT, totpStep } from './totp';

const userStream = (tenantId: string, userId: string) => streamName('user', `${tenantId}.${userId}`);
const sealContext = (tenantId: string, userId: string) => `totp:${tenantId}/${userId}`;
const BAD_CODE = () => new PalisadeError('unauthenticated', 'invalid or expired code');
const BAD_CHALLENGE = () => new PalisadeError('unauthenticated', 'invalid, expired or used MFA token: sign in again');

export interface SecondFactor {
  code?: string;
  recoveryCode?: string;
}

/**
 * TOTP second factor (RFC 6238) with single-use recovery codes. Enrolment either by a
 * signed-in user or, when the tenant makes 2FA mandatory, by the short-lived enrolment
 * token a password sign-in returns: confirming the first code completes that sign-in.
 * Wrong codes count in the shared lockout like wrong passwords.
 */
export class MfaService {
  private readonly recovery: RecoveryCodeHasher;

  constructor(
    private readonly transactions: Transactions,
    private readonly userCommands: CommandHandler<UserState, UserCommand, UserEvent>,
    private readonly mfaRepo: MfaRepository,
    private readonly usersRepo: Pick<UsersRepository, 'findById'>,
    private readonly tenantsRepo: Pick<TenantsRepository, 'find'>,
    private readonly config: Pick<AuthConfig, 'keyEncryptionKey'>,
    private readonly signIns: Pick<SignInService, 'complete' | 'countFailure' | 'assertNotLocked'>,
  ) {
    this.recovery = new RecoveryCodeHasher(config.keyEncryptionKey);
  }

  /** Second step of a sign-in: the TOTP code or a recovery code against the MFA token. */
  async verify(mfaToken: string, factor: SecondFactor, sourceAddress: string, now = new Date()): Promise<TokenResponse> {
    const { challenge, user } = await this.challenge(mfaToken, 'verify', now);
    await this.signIns.assertNotLocked(challenge.tenantId, user.username, sourceAddress, now);
    let recoveryCodesRemaining: number | undefined;
    if (factor.recoveryCode !== undefined) {
      const remaining = await this.consumeRecoveryCode(challenge, factor.recoveryCode);
      if (remaining === undefined) return this.fail(challenge, user, sourceAddress, now);
      recoveryCodesRemaining = remaining;
    } else if (!(await this.acceptTotp(challenge.tenantId, user.id, factor.code ?? '', 'active', now))) {
      return this.fail(challenge, user, sourceAddress, now);
    }
    await this.useChallenge(mfaToken);
    return this.signIns.complete(
      { tenantId: challenge.tenantId, user, method: challenge.method, mfa: true, audience: challenge.audience, sourceAddress, ...(recoveryCodesRemaining === undefined ? {} : { recoveryCodesRemaining }) },
      now,
    );
  }

  /** Mandatory enrolment, step 1: a new secret for the holder of an enrolment token. */
  async beginWithToken(enrolmentToken: string, now = new Date()) {
    const { challenge, user } = await this.challenge(enrolmentToken, 'enrol', now);
    return this.begin(challenge.tenantId, user);
  }

  /** Mandatory enrolment, step 2: the first code confirms the secret; the sign-in completes. */
  async confirmWithToken(enrolmentToken: string, code: string, sourceAddress: string, now = new Date()): Promise<TokenResponse & { recoveryCodes: string[] }> {
    const { challenge, user } = await this.challenge(enrolmentToken, 'enrol', now);
    await this.signIns.assertNotLocked(challenge.tenantId, user.username, sourceAddress, now);
    if (!(await this.acceptTotp(challenge.tenantId, user.id, code, 'pending', now))) return this.fail(challenge, user, sourceAddress, now);
    await this.useChallenge(enrolmentToken);
    const recoveryCodes = await this.enrol(challenge.tenantId, user.id, { type: 'user', id: user.id }, now);
    const tokens = await this.signIns.complete({ tenantId: challenge.tenantId, user: { ...user, mfaEnrolled: true }, method: challenge.method, mfa: true, audience: challenge.audience, sourceAddress }, now);
    return { ...tokens, recoveryCodes };
  }

  /** A signed-in user enrols (optional 2FA), step 1; where 2FA is mandatory, only with the enrolment grant. */
  async beginForUser(principal: Principal) {
    const user = await this.userOf(principal);
    await this.assertOptional(principal.tenantId);
    return this.begin(principal.tenantId, user);
  }

  /** Step 2: the first code confirms; the recovery codes are shown once. */
  async confirmForUser(principal: Principal, code: string, now = new Date()): Promise<{ recoveryCodes: string[] }> {
    const user = await this.userOf(principal);
    await this.assertOptional(principal.tenantId);
    if (!(await this.acceptTotp(principal.tenantId, user.id, code, 'pending', now))) throw BAD_CODE();
    return { recoveryCodes: await this.enrol(principal.tenantId, user.id, { type: 'user', id: user.id }, now) };
  }

  /** An administrator removes a user's second factor (lost device); the user enrols again. */
  async reset(admin: Principal, userId: string): Promise<void> {
    await this.userCommands.handle(userStream(admin.tenantId, userId), {
      type: 'ResetMfa',
      data: { userId },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
  }

  private async begin(tenantId: string, user: UserRow) {
    if (user.status !== 'active') throw new PalisadeError('forbidden', 'user is disabled');
    if (user.mfaEnrolled) throw new PalisadeError('conflict', 'a second factor is already enrolled: an administrator can reset it');
    const secret = newTotpSecret();
    const saved = await this.transactions.inTransaction((tx) => this.mfaRepo.savePending(tx, tenantId, user.id, seal(this.config.keyEncryptionKey, secret, sealContext(tenantId, user.id))));
    if (!saved) throw new PalisadeError('conflict', 'a second factor is already enrolled');
    return { method: 'totp' as const, ...enrolmentOf(secret, user.username, `Palisade (${tenantId})`) };
  }

  private async enrol(tenantId: string, userId: string, actor: { type: 'user'; id: string }, now: Date): Promise<string[]> {
    const codes = newRecoveryCodes();
    const hashes = codes.map((c) => this.recovery.hash(tenantId, userId, c));
    await this.userCommands.handle(
      userStream(tenantId, userId),
      { type: 'EnrolMfa', data: { userId, method: 'totp', recoveryCodes: RECOVERY_CODE_COUNT }, metadata: { tenantId, actor, now } },
      undefined,
      (tx) => this.mfaRepo.activate(tx, tenantId, userId, hashes),
    );
    return codes;
  }

  /** A code of the stored secret in the given state, for a time step not used before. */
  private async acceptTotp(tenantId: string, userId: string, code: string, status: 'pending' | 'active', now: Date): Promise<boolean> {
    const stored = await this.transactions.inTransaction((tx) => this.mfaRepo.totp(tx, tenantId, userId));
    if (!stored || stored.status !== status) return false;
    const step = totpStep(open(this.config.keyEncryptionKey, stored.sealed, sealContext(tenantId, userId)), code, now);
    if (step === undefined) return false;
    return this.transactions.inTransaction((tx) => this.mfaRepo.useStep(tx, tenantId, userId, step));
  }

  /** How many codes remain after using this one, or undefined when it is not an unused code of the user. */
  private async consumeRecoveryCode(c: Challenge, code: string): Promise<number | undefined> {
    const candidate = this.recovery.hash(c.tenantId, c.userId, code);
    return this.transactions.inTransaction(async (tx) => {
      const stored = await this.mfaRepo.unusedRecoveryCodes(tx, c.tenantId, c.userId);
      const match = this.recovery.match(candidate, stored);
      if (!match || !(await this.mfaRepo.consumeRecoveryCode(tx, c.tenantId, c.userId, match))) return undefined;
      return stored.length - 1;
    });
  }

  private async challenge(token: string, purpose: ChallengePurpose, now: Date): Promise<{ challenge: Challenge; user: UserRow }> {
    if (!isChallengeTokenShaped(token)) throw BAD_CHALLENGE();
    const found = await this.transactions.inTransaction(async (tx) => {
      const challenge = await this.mfaRepo.attemptChallenge(tx, hashChallengeToken(token), purpose, CHALLENGE_MAX_ATTEMPTS, now);
      const user = challenge && (await this.usersRepo.findById(tx, challenge.tenantId, challenge.userId));
      return challenge && user ? { challenge, user } : undefined;
    });
    if (!found) throw BAD_CHALLENGE();
    return found;
  }

  private async useChallenge(token: string): Promise<void> {
    if (!(await this.transactions.inTransaction((tx) => this.mfaRepo.completeChallenge(tx, hashChallengeToken(token))))) throw BAD_CHALLENGE();
  }

  /** A wrong code: counted per account and address (lockout) and recorded as an mfa_failed sign-in failure. */
  private async fail(c: Challenge, user: UserRow, sourceAddress: string, now: Date): Promise<never> {
    const lockout = await this.signIns.countFailure(c.tenantId, user.username, sourceAddress, now);
    await this.userCommands.handle(userStream(c.tenantId, user.id), {
      type: 'RecordMfaFailure',
      data: { userId: user.id, method: c.method, sourceAddress, ...(lockout ? { lockout } : {}) },
      metadata: { tenantId: c.tenantId, actor: { type: 'user', id: user.id }, now },
    });
    if (lockout) throw new PalisadeError('rate_limited', `too many failed sign-ins: retry in ${Math.max(1, Math.ceil((Date.parse(lockout.until) - now.getTime()) / 1000))} s`);
    throw BAD_CODE();
  }

  private async assertOptional(tenantId: string): Promise<void> {
    const tenant = await this.transactions.inTransaction((tx) => this.tenantsRepo.find(tx, tenantId));
    assertSessionEnrolmentAllowed({ mfaRequired: tenant?.mfaRequired ?? true });
  }

  private async userOf(principal: Principal): Promise<UserRow> {
    if (principal.type !== 'user') throw new PalisadeError('forbidden', 'only users enrol a second factor');
    const user = await this.transactions.inTransaction((tx) => this.usersRepo.findById(tx, principal.tenantId, principal.id));
    if (!user) throw INVALID();
    return user;
  }
}
