import { PalisadeError } from '@palisade/contracts';
import { CommandHandler, type Transaction } from '@palisade/eventsourcing';
import type { Platform } from '@palisade/service-kit';
import type { AuthConfig } from './auth.config';
import { PasswordHasher } from './crypto/password-hasher';
import { agentDecider, agentGuideDecider } from './agents/agents.decider';
import { AgentsProjection, AgentsRepository } from './agents/agents.repository';
import { apiKeyDecider } from './api-keys/api-keys.decider';
import { ApiKeysProjection, ApiKeysRepository } from './api-keys/api-keys.repository';
import { identityProviderDecider } from './identity-providers/identity-providers.decider';
import { IdentityProvidersProjection, IdentityProvidersRepository } from './identity-providers/identity-providers.repository';
import { SsoRepository } from './sso/sso.repository';
import { MfaProjection, MfaRepository } from './mfa/mfa.repository';
import { SigningKeysRepository } from './keys/signing-keys.repository';
import { KeyRing } from './keys/signing-keys.service';
import { RevocationIssuer } from './revocations/revocations.projection';
import { SessionsProjection, SessionsRepository } from './sessions/sessions.repository';
import { TokenIssuer } from './sessions/token-issuer';
import { ThrottleRepository } from './sign-in/throttle.repository';
import { teamDecider } from './teams/teams.decider';
import { TeamsProjection, TeamsRepository } from './teams/teams.repository';
import { tenantDecider } from './tenants/tenants.decider';
import { TenantsProjection, TenantsRepository } from './tenants/tenants.repository';
import { userDecider } from './users/users.decider';
import { UsersProjection, UsersRepository } from './users/users.repository';
import { SerializedStreams } from './users/user-streams';

export const AUTH_RUNTIME = Symbol('auth.runtime');

/**
 * What the auth service's use cases share once PostgreSQL is connected: the event
 * store, command handlers with their inline projections, repositories, the key ring.
 * Built in the platform's afterConnect hook; requests before that get 503 from the
 * readiness gate.
 */
export class AuthRuntime {
  readonly hasher: PasswordHasher;
  readonly tenantsRepo = new TenantsRepository();
  readonly usersRepo = new UsersRepository();
  readonly sessionsRepo = new SessionsRepository();
  readonly throttle = new ThrottleRepository();
  readonly mfaRepo = new MfaRepository();
  readonly apiKeysRepo = new ApiKeysRepository();
  readonly identityProvidersRepo = new IdentityProvidersRepository();
  readonly ssoRepo = new SsoRepository();
  readonly teamsRepo = new TeamsRepository();
  readonly agentsRepo = new AgentsRepository();
  private built: ReturnType<AuthRuntime['build']> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly platform: Platform,
    readonly config: AuthConfig,
  ) {
    this.hasher = new PasswordHasher({ memoryKiB: config.AUTH_ARGON2_MEMORY_KIB, passes: config.AUTH_ARGON2_PASSES, parallelism: 1 });
    platform.afterConnect(async () => {
      this.built ??= this.build();
      await this.built.keyRing.start();
      this.timer ??= setInterval(() => void this.built!.keyRing.tick().catch((e: Error) => platform.logger.warn({ err: e.message }, 'signing key refresh failed')), 10_000);
      this.timer.unref();
    });
    platform.beforeClose(async () => clearInterval(this.timer));
  }

  private build() {
    const store = this.platform.eventStore!;
    const eventContext = this.platform.eventContext;
    const revocations = new RevocationIssuer(store, eventContext);
    const keyRing = new KeyRing({
      store,
      repository: new SigningKeysRepository(),
      revocations,
      eventContext,
      keyEncryptionKey: this.config.keyEncryptionKey,
      rotationPeriodMs: this.config.AUTH_KEY_ROTATION_HOURS * 3600_000,
      retiredKeysPublishedMs: 3600_000 + 60_000,
    });
    return {
      store,
      keyRing,
      issuer: new TokenIssuer(keyRing, this.config.AUTH_ACCESS_TOKEN_TTL_SEC),
      tenants: new CommandHandler(store, tenantDecider, { eventContext, projections: [new TenantsProjection()] }),
      identityProviders: new CommandHandler(store, identityProviderDecider, { eventContext, projections: [new IdentityProvidersProjection()] }),
      apiKeys: new CommandHandler(store, apiKeyDecider, { eventContext, projections: [new ApiKeysProjection(), revocations] }),
      teams: new CommandHandler(store, teamDecider, { eventContext, projections: [new TeamsProjection(), revocations], tenantScoped: true }),
      agents: new CommandHandler(store, agentDecider, { eventContext, projections: [new AgentsProjection(), revocations], tenantScoped: true }),
      agentGuides: new CommandHandler(store, agentGuideDecider, { eventContext, tenantScoped: true }),
      users: new CommandHandler(new SerializedStreams(store, (tx, streamId) => this.usersRepo.lockStream(tx, streamId)), userDecider, { eventContext, projections: [new UsersProjection(), new SessionsProjection(), new MfaProjection(), revocations] }),
    };
  }

  private get ready() {
    if (!this.built) throw new PalisadeError('unavailable', 'auth is starting: dependencies are not connected yet');
    return this.built;
  }

  get store() {
    return this.ready.store;
  }
  get keyRing() {
    return this.ready.keyRing;
  }
  get issuer() {
    return this.ready.issuer;
  }
  get tenants() {
    return this.ready.tenants;
  }
  get identityProviders() {
    return this.ready.identityProviders;
  }
  get apiKeys() {
    return this.ready.apiKeys;
  }
  get users() {
    return this.ready.users;
  }
  get teams() {
    return this.ready.teams;
  }
  get agents() {
    return this.ready.agents;
  }
  get agentGuides() {
    return this.ready.agentGuides;
  }

  /** Reads outside a command: one short transaction. */
  read<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.store.inTransaction(work);
  }

  /** The connection pool itself, for statements that stand alone (no transaction). */
  get dataSource() {
    const dataSource = this.platform.dataSource;
    if (!dataSource?.isInitialized) throw new PalisadeError('unavailable', 'auth is starting: dependencies are not connected yet');
    return dataSource;
  }
}
