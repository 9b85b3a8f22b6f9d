import { Module } from '@nestjs/common';
import { PalisadeError } from '@palisade/contracts';
import { CommandHandler } from '@palisade/eventsourcing';
import { connectedEventStore, PLATFORM, type Platform } from '@palisade/service-kit';
import { AUTH_CONFIG, loadAuthConfig, type AuthConfig } from './auth.config';
import { BootstrapController } from './bootstrap/bootstrap.controller';
import { BootstrapService } from './bootstrap/bootstrap.service';
import { PasswordHasher } from './crypto/password-hasher';
import { AgentGuideController, AgentsController, AgentSelfController } from './agents/agents.controller';
import { agentDecider, agentGuideDecider } from './agents/agents.decider';
import { AgentsProjection, AgentsRepository } from './agents/agents.repository';
import { AgentsService } from './agents/agents.service';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { apiKeyDecider } from './api-keys/api-keys.decider';
import { ApiKeysProjection, ApiKeysRepository } from './api-keys/api-keys.repository';
import { ApiKeysRpc } from './api-keys/api-keys.rpc';
import { ApiKeysService } from './api-keys/api-keys.service';
import { IdentityProvidersController } from './identity-providers/identity-providers.controller';
import { idpSecretStore } from './identity-providers/credential-service-secrets';
import { identityProviderDecider } from './identity-providers/identity-providers.decider';
import { IdentityProvidersProjection, IdentityProvidersRepository } from './identity-providers/identity-providers.repository';
import { IdentityProvidersService } from './identity-providers/identity-providers.service';
import { SigningKeysController } from './keys/signing-keys.controller';
import { SigningKeysRepository } from './keys/signing-keys.repository';
import { KeyRing } from './keys/signing-keys.service';
import { MfaController } from './mfa/mfa.controller';
import { MfaProjection, MfaRepository } from './mfa/mfa.repository';
import { MfaService } from './mfa/mfa.service';
import { RevocationIssuer } from './revocations/revocations.projection';
import { SessionsController } from './sessions/sessions.controller';
import { SessionsProjection, SessionsRepository } from './sessions/sessions.repository';
import { SessionsService } from './sessions/sessions.service';
import { TokenIssuer } from './sessions/token-issuer';
import { SignInController } from './sign-in/sign-in.controller';
import { SignInService } from './sign-in/sign-in.service';
import { ThrottleRepository } from './sign-in/throttle.repository';
import { OidcService } from './sso/oidc.service';
import { SamlService } from './sso/saml.service';
import { SsoController } from './sso/sso.controller';
import { SsoRepository } from './sso/sso.repository';
import { TeamsController } from './teams/teams.controller';
import { teamDecider } from './teams/teams.decider';
import { TeamsProjection, TeamsRepository } from './teams/teams.repository';
import { TeamsService } from './teams/teams.service';
import { PlatformTenantsController } from './tenants/platform-tenants.controller';
import { TenantProvisioning } from './tenants/tenant-provisioning';
import { TenantsController } from './tenants/tenants.controller';
import { tenantDecider } from './tenants/tenants.decider';
import { TenantsProjection, TenantsRepository } from './tenants/tenants.repository';
import { TenantsService } from './tenants/tenants.service';
import type { Transactions } from './transactions';
import { UsersController } from './users/users.controller';
import { userDecider } from './users/users.decider';
import { UsersProjection, UsersRepository } from './users/users.repository';
import { UsersService } from './users/users.service';
import { ErasuresConsumer } from './users/erasures.consumer';

const starting = () => new PalisadeError('unavailable', 'auth is starting: dependencies are not connected yet');

/** What the controllers and the RPC are given: one service each. */
interface AuthServices {
  keyRing: KeyRing;
  tenants: TenantsService;
  users: UsersService;
  teams: TeamsService;
  signIns: SignInService;
  sessions: SessionsService;
  mfa: MfaService;
  apiKeys: ApiKeysService;
  agents: AgentsService;
  identityProviders: IdentityProvidersService;
  oidc: OidcService;
  saml: SamlService;
  provisioning: TenantProvisioning;
  bootstrap: BootstrapService;
}

const AUTH_SERVICES = Symbol('AUTH_SERVICES');

/**
 * The wiring, and the only place that knows the platform: builds the repositories, the
 * command handlers with their inline projections, the key ring and the services, hands
 * each only what it uses, and starts and stops the key ring's refresh with the platform.
 */
function wire(platform: Platform, config: AuthConfig): AuthServices {
  const { eventContext, logger } = platform;
  const store = connectedEventStore(platform, 'auth is starting: dependencies are not connected yet');
  const transactions: Transactions = store;
  const hasher = new PasswordHasher({ memoryKiB: config.AUTH_ARGON2_MEMORY_KIB, passes: config.AUTH_ARGON2_PASSES, parallelism: 1 });

  const tenantsRepo = new TenantsRepository();
  const usersRepo = new UsersRepository();
  const sessionsRepo = new SessionsRepository();
  const throttle = new ThrottleRepository();
  const mfaRepo = new MfaRepository();
  const apiKeysRepo = new ApiKeysRepository();
  const identityProvidersRepo = new IdentityProvidersRepository();
  const ssoRepo = new SsoRepository();
  const teamsRepo = new TeamsRepository();
  const agentsRepo = new AgentsRepository();

  const revocations = new RevocationIssuer(store, eventContext);
  const keyRing = new KeyRing({
    store,
    repository: new SigningKeysRepository(),
    revocations,
    eventContext,
    keyEncryptionKey: config.keyEncryptionKey,
    rotationPeriodMs: config.AUTH_KEY_ROTATION_HOURS * 3600_000,
    retiredKeysPublishedMs: 3600_000 + 60_000,
  });
  let timer: NodeJS.Timeout | undefined;
  platform.afterConnect(async () => {
    await keyRing.start();
    timer ??= setInterval(() => void keyRing.tick().catch((e: Error) => logger.warn({ err: e.message }, 'signing key refresh failed')), 10_000);
    timer.unref();
  });
  platform.beforeClose(async () => clearInterval(timer));
  const issuer = new TokenIssuer(keyRing, config.AUTH_ACCESS_TOKEN_TTL_SEC);

  const tenantCommands = new CommandHandler(store, tenantDecider, { eventContext, projections: [new TenantsProjection()] });
  const providerCommands = new CommandHandler(store, identityProviderDecider, { eventContext, projections: [new IdentityProvidersProjection()] });
  const apiKeyCommands = new CommandHandler(store, apiKeyDecider, { eventContext, projections: [new ApiKeysProjection(), revocations] });
  const teamCommands = new CommandHandler(store, teamDecider, { eventContext, projections: [new TeamsProjection(), revocations], tenantScoped: true });
  const agentCommands = new CommandHandler(store, agentDecider, { eventContext, projections: [new AgentsProjection(), revocations], tenantScoped: true });
  const guideCommands = new CommandHandler(store, agentGuideDecider, { eventContext, tenantScoped: true });
  // commands on one user (sign-ins, the failures the lockout counts, revocations, password changes) wait for each other
  const userCommands = new CommandHandler(store, userDecider, {
    eventContext,
    lockStream: (tx, streamId) => usersRepo.lockStream(tx, streamId),
    projections: [new UsersProjection(), new SessionsProjection(), new MfaProjection(), revocations],
  });

  const identityProviders = new IdentityProvidersService(transactions, providerCommands, identityProvidersRepo, idpSecretStore(config, () => platform.nats), logger);
  const teams = new TeamsService(transactions, teamCommands, teamsRepo, { activeAgentsOf: (tx, tenantId, teamId) => agentsRepo.activeAgentsOf(tx, tenantId, teamId) });
  const signIns = new SignInService(transactions, userCommands, store, eventContext, usersRepo, tenantsRepo, teamsRepo, sessionsRepo, throttle, mfaRepo, hasher, issuer, config, identityProviders, teams);
  const refreshTokens = {
    rotate: (oldHash: Buffer, newHash: Buffer) => {
      const dataSource = platform.dataSource;
      if (!dataSource?.isInitialized) throw starting();
      return sessionsRepo.rotate(dataSource, oldHash, newHash);
    },
  };
  const sessions = new SessionsService(transactions, userCommands, sessionsRepo, refreshTokens, issuer, config);
  const users = new UsersService(transactions, userCommands, usersRepo, tenantsRepo, hasher, signIns);
  new ErasuresConsumer(platform, () => users, () => store);
  const mfa = new MfaService(transactions, userCommands, mfaRepo, usersRepo, tenantsRepo, config, signIns);
  const apiKeys = new ApiKeysService(transactions, apiKeyCommands, apiKeysRepo, issuer, config);
  const agents = new AgentsService(transactions, agentCommands, guideCommands, agentsRepo, teamsRepo, usersRepo, apiKeysRepo, issuer, config, apiKeys);
  const tenants = new TenantsService(transactions, tenantCommands, tenantsRepo);
  const provisioning = new TenantProvisioning(tenants, users);
  return {
    keyRing,
    tenants,
    users,
    teams,
    signIns,
    sessions,
    mfa,
    apiKeys,
    agents,
    identityProviders,
    oidc: new OidcService(transactions, ssoRepo, config, identityProviders, signIns),
    saml: new SamlService(transactions, ssoRepo, config, identityProviders, signIns),
    provisioning,
    bootstrap: new BootstrapService(config.AUTH_BOOTSTRAP_TOKEN_FILE, tenants, provisioning),
  };
}

const serviceOf = <K extends keyof AuthServices>(token: abstract new (...args: never[]) => AuthServices[K], key: K) => ({
  provide: token,
  useFactory: (services: AuthServices) => services[key],
  inject: [AUTH_SERVICES],
});

/**
 * The auth service: tenants, local accounts, teams, agents, sessions and tokens, signing keys. Health,
 * metrics, docs, the event store, the outbox and NATS come from @palisade/service-kit.
 */
@Module({
  controllers: [SigningKeysController, SignInController, UsersController, TenantsController, PlatformTenantsController, SessionsController, BootstrapController, MfaController, ApiKeysController, IdentityProvidersController, SsoController, TeamsController, AgentsController, AgentGuideController, AgentSelfController],
  providers: [
    { provide: AUTH_CONFIG, useFactory: () => loadAuthConfig() },
    { provide: AUTH_SERVICES, useFactory: (platform: Platform, config: AuthConfig) => wire(platform, config), inject: [PLATFORM, AUTH_CONFIG] },
    serviceOf(KeyRing, 'keyRing'),
    serviceOf(TenantsService, 'tenants'),
    serviceOf(UsersService, 'users'),
    serviceOf(TeamsService, 'teams'),
    serviceOf(SignInService, 'signIns'),
    serviceOf(SessionsService, 'sessions'),
    serviceOf(MfaService, 'mfa'),
    serviceOf(ApiKeysService, 'apiKeys'),
    serviceOf(AgentsService, 'agents'),
    serviceOf(IdentityProvidersService, 'identityProviders'),
    serviceOf(OidcService, 'oidc'),
    serviceOf(SamlService, 'saml'),
    serviceOf(TenantProvisioning, 'provisioning'),
    serviceOf(BootstrapService, 'bootstrap'),
    ApiKeysRpc,
  ],
})
export class AuthModule {}
