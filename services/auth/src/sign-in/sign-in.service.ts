import { createHash, randomUUID } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { ConcurrencyError, PalisadeError, type Actor, type EventFactoryContext } from '@palisade/contracts';
import { envelopeOf, streamName, type CommandHandler, type DomainEvent, type EventStore } from '@palisade/eventsourcing';
import type { AuthConfig } from '../auth.config';
import type { PasswordHasher } from '../crypto/password-hasher';
import type { MfaRepository } from '../mfa/mfa.repository';
import type { SessionsRepository } from '../sessions/sessions.repository';
import type { TeamsRepository } from '../teams/teams.repository';
import type { TenantsRepository } from '../tenants/tenants.repository';
import type { Transactions } from '../transactions';
import type { UserCommand, UserState } from '../users/users.decider';
import type { UserEvent } from '../users/users.events';
import { ALL_AUDIENCES, newRefreshToken, scopesOf, type TokenIssuer } from '../sessions/token-issuer';
import type { LdapSettings } from '../identity-providers/identity-providers.events';
import type { TeamsService } from '../teams/teams.service';
import type { IdentityProvidersService } from '../identity-providers/identity-providers.service';
import { authenticate, rolesOf } from '../ldap/ldap-directory';
import { issueChallenge, secondFactorStep } from '../mfa/mfa-challenge';
import type { TenantRow } from '../tenants/tenants.repository';
import { throttledSignIn } from '../users/users.decider';
import type { SignInMethod } from '../users/users.events';
import { normalizeUsername, type UserRow, type UsersRepository } from '../users/users.repository';
import { throttleKey, type ThrottleClaim, type ThrottleRepository } from './throttle.repository';

export interface SignInRequest {
  tenantId: string;
  username: string;
  password: string;
  sourceAddress: string;
  audience?: string[];
}

export interface TokenResponse {
  tokenType: 'Bearer';
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  sessionId: string;
}

/** Password accepted; the second factor comes next, with this short-lived single-use token. */
export interface MfaChallengeResponse {
  status: 'mfa_required' | 'mfa_enrolment_required';
  mfaToken: string;
  expiresIn: number;
}

export interface CompletedSignIn {
  tenantId: string;
  user: UserRow;
  method: SignInMethod;
  mfa: boolean;
  audience: string[];
  sourceAddress: string;
  /** The password used (a stronger hash is stored when the parameters were raised). */
  password?: string;
  recoveryCodesRemaining?: number;
}

const accountKeyOf = (tenantId: string, username: string) => throttleKey('account', tenantId, normalizeUsername(username));

/** A lock a failure set: on the account, or on the source address. */
export interface Lockout {
  scope: 'account' | 'address';
  failures: number;
  until: string;
}

/** One credential check, reserved in the lockout before it runs. */
export interface Attempt {
  claims: ThrottleClaim[];
  /** Set when this attempt reached the threshold and locked (recorded if the credential turns out wrong). */
  lockout?: Lockout;
}

/** Who is trying: the account as resolved (its own name, or for an unknown one the name as typed). */
export interface AttemptOf {
  tenantId: string;
  accountName: string;
  /** The local account, when there is one: a refused attempt is recorded for it. */
  userId?: string;
  method: SignInMethod;
  sourceAddress: string;
}

function lockedOut(until: Date, now: Date): PalisadeError {
  const retryAfter = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  return new PalisadeError('rate_limited', `too many failed sign-ins: retry in ${retryAfter} s`, { retryAfterSec: retryAfter });
}

export const INVALID = () => new PalisadeError('unauthenticated', 'invalid username or password');

/**
 * Password sign-in. Whether the account exists or not, the same work is done (an
 * argon2id verification against a decoy hash) and the same answer given; failures count
 * per account and per source address in PostgreSQL, shared by every auth instance.
 */
export class SignInService {
  constructor(
    private readonly transactions: Transactions,
    private readonly userCommands: CommandHandler<UserState, UserCommand, UserEvent>,
    /** Where attempts that change no account are appended (a stream of their own each). */
    private readonly store: Pick<EventStore, 'appendToStream' | 'sealPersonal'>,
    private readonly eventContext: EventFactoryContext,
    private readonly usersRepo: Pick<UsersRepository, 'findByUsername' | 'rehash'>,
    private readonly tenantsRepo: Pick<TenantsRepository, 'find'>,
    private readonly teamsRepo: Pick<TeamsRepository, 'teamsOf'>,
    private readonly sessionsRepo: Pick<SessionsRepository, 'open'>,
    private readonly throttle: ThrottleRepository,
    private readonly challenges: Pick<MfaRepository, 'createChallenge'>,
    private readonly hasher: Pick<PasswordHasher, 'hash' | 'verify' | 'verifyDecoy' | 'needsRehash'>,
    private readonly issuer: Pick<TokenIssuer, 'issue'>,
    private readonly config: Pick<
      AuthConfig,
      'AUTH_SESSION_TTL_SEC' | 'AUTH_OPERATOR_TENANT' | 'AUTH_LOCKOUT_BASE_SEC' | 'AUTH_LOCKOUT_MAX_SEC' | 'AUTH_LOCKOUT_THRESHOLD' | 'AUTH_ADDRESS_LOCKOUT_THRESHOLD'
    >,
    private readonly providers: Pick<IdentityProvidersService, 'withSecret'>,
    private readonly teams?: Pick<TeamsService, 'syncMappedTeams'>,
  ) {}

  async signIn(r: SignInRequest, now = new Date()): Promise<TokenResponse | MfaChallengeResponse> {
    const { tenant, user } = await this.transactions.inTransaction(async (tx) => ({
      tenant: await this.tenantsRepo.find(tx, r.tenantId),
      user: await this.usersRepo.findByUsername(tx, r.tenantId, r.username),
    }));
    const account = tenant ? user : undefined;
    const attempt = await this.reserveAttempt({ tenantId: r.tenantId, accountName: account?.username ?? r.username, ...(account ? { userId: account.id } : {}), method: 'password', sourceAddress: r.sourceAddress }, now);
    const valid = account?.passwordHash ? await this.hasher.verify(r.password, account.passwordHash) : await this.hasher.verifyDecoy(r.password);

    if (!valid) {
      if (account) await this.recordFailure(r.tenantId, account.id, 'password', r.sourceAddress, now, attempt.lockout);
      else if (tenant) await this.recordUnknownAccount(r.tenantId, r.username, 'password', r.sourceAddress, now);
      throw INVALID();
    }
    await this.releaseAttempt(attempt);
    return this.proceed(tenant!, account!, { tenantId: r.tenantId, method: 'password', audience: r.audience, sourceAddress: r.sourceAddress, password: r.password }, now);
  }

  /**
   * LDAP / Active Directory sign-in through one of the tenant's providers: the directory
   * checks the password; the account is provisioned (or its roles updated) from the
   * user's groups; then, as for passwords, the second factor if any, and the tokens.
   * Attempts are reserved in the same lockout, on the directory entry the search found
   * (the account `<provider>:<uid>` as the directory spells it, whatever spelling was
   * typed), before the directory checks the password.
   */
  async signInWithLdap(r: SignInRequest & { providerId: string }, now = new Date()): Promise<TokenResponse | MfaChallengeResponse> {
    const provider = await this.providers.withSecret(r.tenantId, r.providerId, 'ldap');
    let attempt: Attempt | undefined;
    let account: UserRow | undefined;
    let accountName = `${r.providerId}:${r.username}`;
    const found = await authenticate(provider.settings.ldap, provider.secret, r.username, r.password, async (entry) => {
      accountName = `${r.providerId}:${entry.uid}`;
      account = await this.transactions.inTransaction((tx) => this.usersRepo.findByUsername(tx, r.tenantId, accountName));
      attempt = await this.reserveAttempt({ tenantId: r.tenantId, accountName, ...(account ? { userId: account.id } : {}), method: 'ldap', sourceAddress: r.sourceAddress }, now);
    });
    if (!found) {
      // No entry (or no password): nothing was checked, but the attempt counts all the same.
      attempt ??= await this.reserveAttempt({ tenantId: r.tenantId, accountName, method: 'ldap', sourceAddress: r.sourceAddress }, now);
      if (account) await this.recordFailure(r.tenantId, account.id, 'ldap', r.sourceAddress, now, attempt.lockout);
      else await this.recordUnknownAccount(r.tenantId, accountName, 'ldap', r.sourceAddress, now);
      throw INVALID();
    }
    if (attempt) await this.releaseAttempt(attempt);
    return this.signInExternal({ ...r, method: 'ldap', externalId: found.uid, groups: found.groups, settings: provider.settings.ldap, ...(found.email ? { email: found.email } : {}) }, now);
  }

  /**
   * A user the provider vouched for (LDAP bind, OIDC ID token, SAML assertion): roles from
   * their groups, the account `<provider>:<id>` provisioned or its roles updated, then the
   * second factor where ours applies, and the tokens.
   */
  async signInExternal(
    r: {
      tenantId: string;
      providerId: string;
      method: SignInMethod;
      externalId: string;
      groups: string[];
      email?: string;
      settings: Pick<LdapSettings, 'groupRoles' | 'requireMappedGroup' | 'groupTeams'>;
      audience?: string[];
      sourceAddress: string;
    },
    now = new Date(),
  ): Promise<TokenResponse | MfaChallengeResponse> {
    const tenant = await this.transactions.inTransaction((tx) => this.tenantsRepo.find(tx, r.tenantId));
    if (!tenant) throw INVALID();
    const roles = rolesOf(r.groups, r.settings);
    if (!roles) throw new PalisadeError('forbidden', 'the account is in no group this tenant admits');
    const account = await this.provision(r.tenantId, r.providerId, `${r.providerId}:${r.externalId}`, roles, r.email, now);
    await this.teams?.syncMappedTeams(r.tenantId, account.id, r.groups, r.settings.groupTeams, now);
    return this.proceed(tenant, account, { tenantId: r.tenantId, method: r.method, audience: r.audience, sourceAddress: r.sourceAddress }, now);
  }

  /** After good first-factor credentials: a second-factor challenge when needed, else the tokens. */
  private async proceed(
    tenant: TenantRow,
    account: UserRow,
    s: { tenantId: string; method: SignInMethod; audience?: string[]; sourceAddress: string; password?: string },
    now: Date,
  ): Promise<TokenResponse | MfaChallengeResponse> {
    const audience = s.audience?.length ? s.audience : ALL_AUDIENCES;
    // A second factor is needed: enrolled, or mandatory in the tenant (then enrolment first;
    // for OIDC and SAML too). Otherwise OIDC and SAML rely on the identity provider's own.
    const purpose = account.status === 'active' ? secondFactorStep(s.method, account, tenant) : undefined;
    if (purpose) {
      const { token, expiresIn } = await issueChallenge(this.transactions, this.challenges, { tenantId: s.tenantId, userId: account.id, purpose, audience, method: s.method }, now);
      return { status: purpose === 'verify' ? 'mfa_required' : 'mfa_enrolment_required', mfaToken: token, expiresIn };
    }
    return this.complete({ tenantId: s.tenantId, user: account, method: s.method, mfa: false, audience, sourceAddress: s.sourceAddress, ...(s.password ? { password: s.password } : {}) }, now);
  }

  /** The local account of a directory user: registered at first sign-in, roles kept in step with the groups. */
  private async provision(tenantId: string, providerId: string, username: string, roles: string[], email: string | undefined, now: Date): Promise<UserRow> {
    const existing = await this.transactions.inTransaction((tx) => this.usersRepo.findByUsername(tx, tenantId, username));
    const userId = existing?.id ?? randomUUID();
    const actor: Actor = { type: 'service', id: 'auth' };
    if (existing) {
      await this.userCommands.handle(streamName('user', `${tenantId}.${userId}`), { type: 'SyncRoles', data: { userId, roles }, metadata: { tenantId, actor, now } });
    } else {
      await this.userCommands
        .handle(
          streamName('user', `${tenantId}.${userId}`),
          {
            type: 'RegisterUser',
            data: { userId, username, ...(email ? { email } : {}), roles, passwordExpiresAt: null, identityProvider: providerId },
            metadata: { tenantId, actor, now },
          },
          0,
        )
        .catch((e: unknown) => {
          // Two first sign-ins at once: the other one registered the account.
          if (!(e instanceof PalisadeError && e.code === 'conflict') && !(e instanceof ConcurrencyError)) throw e;
        });
    }
    const account = await this.transactions.inTransaction((tx) => this.usersRepo.findByUsername(tx, tenantId, username));
    if (!account) throw new PalisadeError('unavailable', 'the account could not be provisioned: try again');
    return account;
  }

  /**
   * The credentials (and second factor, if any) are good: record the sign-in, open the
   * session with its first refresh token, and issue the access token.
   */
  async complete(s: CompletedSignIn, now = new Date()): Promise<TokenResponse> {
    const c = this.config;
    const sessionId = uuidv7();
    const expiresAt = new Date(now.getTime() + c.AUTH_SESSION_TTL_SEC * 1000);
    const refresh = newRefreshToken();
    const user = s.user;
    const result = await this.userCommands.handle(
      streamName('user', `${s.tenantId}.${user.id}`),
      {
        type: 'RecordSignIn',
        data: {
          userId: user.id,
          method: s.method,
          sessionId,
          sessionExpiresAt: expiresAt.toISOString(),
          sourceAddress: s.sourceAddress,
          credentialsValid: true,
          mfa: s.mfa,
          ...(s.recoveryCodesRemaining === undefined ? {} : { recoveryCodesRemaining: s.recoveryCodesRemaining }),
        },
        metadata: this.meta(s.tenantId, user.id, now),
      },
      undefined,
      async (tx, events) => {
        await this.throttle.clear(tx, accountKeyOf(s.tenantId, user.username));
        if (s.password && user.passwordHash && this.hasher.needsRehash(user.passwordHash)) await this.usersRepo.rehash(tx, s.tenantId, user.id, await this.hasher.hash(s.password));
        if (events.some((e) => e.type === 'auth.user.signed-in')) {
          await this.sessionsRepo.open(tx, { sessionId, tenantId: s.tenantId, userId: user.id, audience: s.audience, mfa: s.mfa, createdAt: now, expiresAt }, refresh.hash);
        }
      },
    );
    const failure = result.events.find((e) => e.type === 'auth.user.sign-in-failed');
    if (failure) {
      const reason = (failure.data as { reason: string }).reason;
      throw reason === 'password_expired' ? new PalisadeError('forbidden', 'password expired: change it before signing in') : INVALID();
    }
    const { accessToken, expiresIn } = await this.issuer.issue({
      tenantId: s.tenantId,
      subject: user.id,
      principalType: 'user',
      audience: s.audience,
      scopes: scopesOf(user.roles, s.tenantId === c.AUTH_OPERATOR_TENANT),
      sessionId,
      teams: await this.transactions.inTransaction((tx) => this.teamsRepo.teamsOf(tx, s.tenantId, user.id)),
    });
    return { tokenType: 'Bearer', accessToken, expiresIn, refreshToken: refresh.token, sessionId };
  }

  /**
   * Reserve one credential check for the account and the source address, atomically in
   * PostgreSQL, before it runs: it counts as a failure until released. While either is
   * locked the answer is 429 without a check, and for a local account the refusal is
   * recorded (`reason: throttled`) before the 429 is given.
   */
  async reserveAttempt(a: AttemptOf, now: Date): Promise<Attempt> {
    const c = this.config;
    const policy = { baseSec: c.AUTH_LOCKOUT_BASE_SEC, maxSec: c.AUTH_LOCKOUT_MAX_SEC };
    const claims: ThrottleClaim[] = [
      { key: accountKeyOf(a.tenantId, a.accountName), policy: { ...policy, threshold: c.AUTH_LOCKOUT_THRESHOLD } },
      { key: throttleKey('address', a.sourceAddress), policy: { ...policy, threshold: c.AUTH_ADDRESS_LOCKOUT_THRESHOLD } },
    ];
    const reservation = await this.transactions.inTransaction((tx) => this.throttle.reserve(tx, claims, now));
    if (!reservation.granted) {
      // A refusal writes nothing to the throttle, so its record needs no shared transaction.
      if (a.userId) await this.appendAttempt(a.tenantId, a.userId, throttledSignIn(a.userId, a.method, a.sourceAddress), now);
      throw lockedOut(reservation.lockedUntil, now);
    }
    const lock = reservation.lockedNow;
    return lock ? { claims, lockout: { scope: lock.claim === 0 ? 'account' : 'address', failures: lock.failures, until: lock.lockedUntil.toISOString() } } : { claims };
  }

  /** The credential was good: the reserved attempt is no failure, and a lock it set is lifted. */
  async releaseAttempt(attempt: Attempt): Promise<void> {
    const l = attempt.lockout;
    await this.transactions.inTransaction((tx) => this.throttle.release(tx, attempt.claims, l && { claim: l.scope === 'account' ? 0 : 1, lockedUntil: new Date(l.until) }));
  }

  /**
   * One more failure (second factor) for the account and the source address,
   * in the table every auth instance shares; returns the lockout it caused, if any.
   */
  async countFailure(tenantId: string, username: string, sourceAddress: string, now: Date): Promise<{ scope: 'account' | 'address'; failures: number; until: string } | undefined> {
    const c = this.config;
    const policy = { baseSec: c.AUTH_LOCKOUT_BASE_SEC, maxSec: c.AUTH_LOCKOUT_MAX_SEC };
    const { byAccount, byAddress } = await this.transactions.inTransaction(async (tx) => ({
      byAccount: await this.throttle.recordFailure(tx, accountKeyOf(tenantId, username), { ...policy, threshold: c.AUTH_LOCKOUT_THRESHOLD }, now),
      byAddress: await this.throttle.recordFailure(tx, throttleKey('address', sourceAddress), { ...policy, threshold: c.AUTH_ADDRESS_LOCKOUT_THRESHOLD }, now),
    }));
    const lock = byAccount.lockedNow ? { scope: 'account' as const, ...byAccount } : byAddress.lockedNow ? { scope: 'address' as const, ...byAddress } : undefined;
    return lock && { scope: lock.scope, failures: lock.failures, until: lock.lockedUntil!.toISOString() };
  }

  /** 429 while the account or the address is locked. */
  async assertNotLocked(tenantId: string, username: string, sourceAddress: string, now: Date): Promise<void> {
    const lockedUntil = await this.transactions.inTransaction((tx) => this.throttle.lockedUntil(tx, [accountKeyOf(tenantId, username), throttleKey('address', sourceAddress)], now));
    if (lockedUntil) throw lockedOut(lockedUntil, now);
  }

  private meta(tenantId: string, userId: string, now: Date) {
    const actor: Actor = { type: 'user', id: userId };
    return { tenantId, actor, now };
  }

  /** A wrong credential of a local account, on the user's stream, with the lock it caused if any. */
  async recordFailure(tenantId: string, userId: string, method: SignInMethod, sourceAddress: string, now: Date, lockout?: Lockout) {
    await this.userCommands.handle(streamName('user', `${tenantId}.${userId}`), {
      type: 'RecordSignIn',
      data: { userId, method, sessionId: '-', sessionExpiresAt: now.toISOString(), sourceAddress, credentialsValid: false, mfa: false, ...(lockout ? { lockout } : {}) },
      metadata: this.meta(tenantId, userId, now),
    });
  }

  /** A failure for an account that does not exist: recorded under a digest of the name, the name itself only as personal data. */
  private async recordUnknownAccount(tenantId: string, username: string, method: SignInMethod, sourceAddress: string, now: Date): Promise<void> {
    const digest = createHash('sha256').update(`${tenantId}\u0000${username.toLowerCase()}`).digest('hex').slice(0, 32);
    const subjectId = `unknown-${digest}`;
    const event = { type: 'auth.user.sign-in-failed', data: { userId: null, method, reason: 'bad_credentials' }, personal: { subjectId, data: { username, sourceAddress } } };
    await this.appendAttempt(tenantId, subjectId, event, now);
  }

  /**
   * An attempt that changes no account (a refusal while locked, a failure of an unknown
   * account) is a stream of its own, `sign-in-attempt-<tenant>.<event id>`: parallel
   * attempts never append to one stream, so they never conflict. Its personal data is
   * sealed before the transaction: a spray of attempts must not hold connections while
   * audit answers.
   */
  private async appendAttempt(tenantId: string, actorId: string, e: DomainEvent, now: Date): Promise<void> {
    const envelope = envelopeOf(this.eventContext, { tenantId, actor: { type: 'user', id: actorId }, now }, e);
    const [stored] = this.store.sealPersonal ? await this.store.sealPersonal([envelope]) : [envelope];
    await this.transactions.inTransaction((tx) => this.store.appendToStream(tx, streamName('sign-in-attempt', `${tenantId}.${stored.id}`), [stored], 0));
  }
}
