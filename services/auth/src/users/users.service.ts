import { randomUUID } from 'node:crypto';
import { PalisadeError, SYSTEM_TENANT, type Actor, type EventEnvelope, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler, type Transaction } from '@palisade/eventsourcing';
import type { Transactions } from '../transactions';
import type { PasswordHasher } from '../crypto/password-hasher';
import type { TenantsRepository } from '../tenants/tenants.repository';
import type { UserCommand, UserState } from './users.decider';
import type { UserEvent } from './users.events';
import type { UsersRepository } from './users.repository';
import type { SignInService } from '../sign-in/sign-in.service';
import { passwordProblems } from '../tenants/tenants.decider';
import type { PasswordPolicy } from '../tenants/tenants.events';

const userStream = (tenantId: string, userId: string) => streamName('user', `${tenantId}.${userId}`);

function expiryOf(policy: PasswordPolicy, now: Date): string | null {
  return policy.maxAgeDays > 0 ? new Date(now.getTime() + policy.maxAgeDays * 86400_000).toISOString() : null;
}

/** Local accounts: registration by an administrator, password changes under the tenant's policy, revocation. */
export class UsersService {
  constructor(
    private readonly transactions: Transactions,
    private readonly userCommands: CommandHandler<UserState, UserCommand, UserEvent>,
    private readonly usersRepo: Pick<UsersRepository, 'findByUsername' | 'findById' | 'list' | 'passwordHistory' | 'setPasswordHash' | 'tenantsOfUser'>,
    private readonly tenantsRepo: Pick<TenantsRepository, 'find'>,
    private readonly hasher: Pick<PasswordHasher, 'hash' | 'verify'>,
    private readonly lockout: Pick<SignInService, 'reserveAttempt' | 'releaseAttempt' | 'recordFailure'>,
  ) {}

  async register(tenantId: string, actor: Actor, input: { username: string; email?: string; password: string; roles: string[] }) {
    const policy = await this.policyOf(tenantId);
    const problems = passwordProblems(input.password, policy);
    if (problems.length > 0) throw new PalisadeError('validation', `password: ${problems.join('; ')}`);
    const taken = await this.transactions.inTransaction((tx) => this.usersRepo.findByUsername(tx, tenantId, input.username));
    if (taken) throw new PalisadeError('conflict', 'username is taken', { field: 'username' });
    const userId = randomUUID();
    const hash = await this.hasher.hash(input.password);
    const now = new Date();
    await this.userCommands.handle(
      userStream(tenantId, userId),
      {
        type: 'RegisterUser',
        data: { userId, username: input.username, ...(input.email ? { email: input.email } : {}), roles: input.roles, passwordExpiresAt: expiryOf(policy, now) },
        metadata: { tenantId, actor, now },
      },
      0,
      (tx) => this.usersRepo.setPasswordHash(tx, tenantId, userId, hash, policy.historySize),
    );
    return { userId };
  }

  /**
   * The caller changes their own password: the current one is required (its check is an
   * attempt the lockout reserves and counts, like a sign-in's), recent ones may not come
   * back, and the user's other sessions end.
   */
  async changeOwnPassword(principal: Principal, current: string, next: string, sourceAddress: string): Promise<void> {
    if (principal.type !== 'user') throw new PalisadeError('forbidden', 'only users have passwords');
    const user = await this.transactions.inTransaction((tx) => this.usersRepo.findById(tx, principal.tenantId, principal.id));
    if (!user?.passwordHash) throw new PalisadeError('unauthenticated', 'current password is wrong');
    const attempt = await this.lockout.reserveAttempt({ tenantId: principal.tenantId, accountName: user.username, userId: user.id, method: 'password', sourceAddress }, new Date());
    if (!(await this.hasher.verify(current, user.passwordHash))) {
      await this.lockout.recordFailure(principal.tenantId, user.id, 'password', sourceAddress, new Date(), attempt.lockout);
      throw new PalisadeError('unauthenticated', 'current password is wrong');
    }
    await this.lockout.releaseAttempt(attempt);
    const policy = await this.policyOf(principal.tenantId);
    const history = await this.transactions.inTransaction((tx) => this.usersRepo.passwordHistory(tx, principal.tenantId, principal.id, Math.max(1, policy.historySize)));
    let reused = false;
    for (const old of history) if (await this.hasher.verify(next, old)) reused = true;
    const problems = passwordProblems(next, policy);
    const hash = problems.length === 0 && !reused ? await this.hasher.hash(next) : '';
    const now = new Date();
    await this.userCommands.handle(
      userStream(principal.tenantId, principal.id),
      {
        type: 'ChangePassword',
        data: { userId: principal.id, by: 'self', problems, reused, historySize: policy.historySize, expiresAt: expiryOf(policy, now), ...(principal.sessionId ? { keepSessionId: principal.sessionId } : {}) },
        metadata: { tenantId: principal.tenantId, actor: { type: 'user', id: principal.id }, now },
      },
      undefined,
      (tx: Transaction) => this.usersRepo.setPasswordHash(tx, principal.tenantId, principal.id, hash, policy.historySize),
    );
  }

  /** Every session and token of the user is refused from now on. */
  async revokeAllSessions(admin: Principal, userId: string): Promise<void> {
    await this.command(admin, userId, 'RevokeAllSessions');
  }

  async disable(admin: Principal, userId: string): Promise<void> {
    await this.command(admin, userId, 'DisableUser');
  }

  /**
   * A data subject erased in the audit service (`audit.subject.erased`, checked by the
   * consumer to come from audit): if it is one of our users, the account ends for good and
   * its name is forgotten. A tenant's erasure reaches only that tenant's user; a platform
   * erasure (tenant `system`) the user wherever it is. Idempotent (a redelivery changes nothing).
   */
  async eraseSubject(erasure: Pick<EventEnvelope, 'id' | 'tenantId' | 'actor' | 'data'>): Promise<number> {
    const subjectId = (erasure.data as { subjectId?: unknown }).subjectId;
    if (typeof subjectId !== 'string' || subjectId.length === 0) return 0;
    const within = erasure.tenantId === SYSTEM_TENANT ? undefined : erasure.tenantId;
    const tenants = await this.transactions.inTransaction((tx) => this.usersRepo.tenantsOfUser(tx, subjectId, within));
    for (const tenantId of tenants) {
      await this.userCommands.handle(userStream(tenantId, subjectId), {
        type: 'EraseUser',
        data: { userId: subjectId, erasure: erasure.id },
        metadata: { tenantId, actor: erasure.actor, now: new Date() },
      });
    }
    return tenants.length;
  }

  /** The tenant roles of a user of the admin's tenant (404 for anyone else's). */
  async setRoles(admin: Principal, userId: string, roles: string[]): Promise<void> {
    await this.userCommands.handle(userStream(admin.tenantId, userId), {
      type: 'SetRoles',
      data: { userId, roles },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
  }

  /** The platform auditor role, for users of the operator's own tenant only (404 for anyone else's). */
  async setPlatformAuditor(operator: Principal, userId: string, granted: boolean): Promise<void> {
    await this.userCommands.handle(userStream(operator.tenantId, userId), {
      type: 'SetPlatformAuditor',
      data: { userId, granted },
      metadata: { tenantId: operator.tenantId, actor: { type: operator.type, id: operator.id }, now: new Date() },
    });
  }

  async list(admin: Principal) {
    const users = await this.transactions.inTransaction((tx) => this.usersRepo.list(tx, admin.tenantId));
    return users.map((u) => ({ userId: u.id, username: u.username, status: u.status, roles: u.roles }));
  }

  private async command(admin: Principal, userId: string, type: 'RevokeAllSessions' | 'DisableUser') {
    await this.userCommands.handle(userStream(admin.tenantId, userId), {
      type,
      data: { userId },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
  }

  private async policyOf(tenantId: string): Promise<PasswordPolicy> {
    const tenant = await this.transactions.inTransaction((tx) => this.tenantsRepo.find(tx, tenantId));
    if (!tenant) throw new PalisadeError('not_found', 'tenant not found');
    return tenant.passwordPolicy;
  }
}
