import { Module } from '@nestjs/common';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { AUTH_CONFIG, loadAuthConfig, type AuthConfig } from './auth.config';
import { AUTH_RUNTIME, AuthRuntime } from './auth.runtime';
import { BootstrapController } from './bootstrap/bootstrap.controller';
import { BootstrapService } from './bootstrap/bootstrap.service';
import { AgentGuideController, AgentsController, AgentSelfController } from './agents/agents.controller';
import { AgentsService } from './agents/agents.service';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ApiKeysRpc } from './api-keys/api-keys.rpc';
import { ApiKeysService } from './api-keys/api-keys.service';
import { IdentityProvidersController } from './identity-providers/identity-providers.controller';
import { idpSecretStore } from './identity-providers/credential-service-secrets';
import { IdentityProvidersService } from './identity-providers/identity-providers.service';
import { OidcService } from './sso/oidc.service';
import { SamlService } from './sso/saml.service';
import { SsoController } from './sso/sso.controller';
import { MfaController } from './mfa/mfa.controller';
import { MfaService } from './mfa/mfa.service';
import { SigningKeysController } from './keys/signing-keys.controller';
import { SessionsController } from './sessions/sessions.controller';
import { SessionsService } from './sessions/sessions.service';
import { SignInController } from './sign-in/sign-in.controller';
import { SignInService } from './sign-in/sign-in.service';
import { PlatformTenantsController } from './tenants/platform-tenants.controller';
import { TenantProvisioning } from './tenants/tenant-provisioning';
import { TeamsController } from './teams/teams.controller';
import { TeamsService } from './teams/teams.service';
import { TenantsController } from './tenants/tenants.controller';
import { TenantsService } from './tenants/tenants.service';
import { UsersController } from './users/users.controller';
import { UsersService } from './users/users.service';

/**
 * The auth service: tenants, local accounts, teams, agents, sessions and tokens, signing keys. Health,
 * metrics, docs, the event store, the outbox and NATS come from @palisade/service-kit.
 */
@Module({
  controllers: [SigningKeysController, SignInController, UsersController, TenantsController, PlatformTenantsController, SessionsController, BootstrapController, MfaController, ApiKeysController, IdentityProvidersController, SsoController, TeamsController, AgentsController, AgentGuideController, AgentSelfController],
  providers: [
    { provide: AUTH_CONFIG, useFactory: () => loadAuthConfig() },
    { provide: AUTH_RUNTIME, useFactory: (platform: Platform, config: AuthConfig) => new AuthRuntime(platform, config), inject: [PLATFORM, AUTH_CONFIG] },
    {
      provide: IdentityProvidersService,
      useFactory: (rt: AuthRuntime, config: AuthConfig, platform: Platform) => new IdentityProvidersService(rt, idpSecretStore(config, () => platform.nats)),
      inject: [AUTH_RUNTIME, AUTH_CONFIG, PLATFORM],
    },
    {
      provide: TeamsService,
      useFactory: (rt: AuthRuntime) => new TeamsService(rt, { activeAgentsOf: (tx, tenantId, teamId) => rt.agentsRepo.activeAgentsOf(tx, tenantId, teamId) }),
      inject: [AUTH_RUNTIME],
    },
    {
      provide: SignInService,
      useFactory: (rt: AuthRuntime, providers: IdentityProvidersService, teams: TeamsService) => new SignInService(rt, providers, teams),
      inject: [AUTH_RUNTIME, IdentityProvidersService, TeamsService],
    },
    { provide: SessionsService, useFactory: (rt: AuthRuntime) => new SessionsService(rt), inject: [AUTH_RUNTIME] },
    { provide: UsersService, useFactory: (rt: AuthRuntime, signIns: SignInService) => new UsersService(rt, signIns), inject: [AUTH_RUNTIME, SignInService] },
    { provide: MfaService, useFactory: (rt: AuthRuntime, signIns: SignInService) => new MfaService(rt, signIns), inject: [AUTH_RUNTIME, SignInService] },
    { provide: ApiKeysService, useFactory: (rt: AuthRuntime) => new ApiKeysService(rt), inject: [AUTH_RUNTIME] },
    ApiKeysRpc,
    { provide: AgentsService, useFactory: (rt: AuthRuntime, keys: ApiKeysService) => new AgentsService(rt, keys), inject: [AUTH_RUNTIME, ApiKeysService] },
    {
      provide: OidcService,
      useFactory: (rt: AuthRuntime, providers: IdentityProvidersService, signIns: SignInService) => new OidcService(rt, providers, signIns),
      inject: [AUTH_RUNTIME, IdentityProvidersService, SignInService],
    },
    {
      provide: SamlService,
      useFactory: (rt: AuthRuntime, providers: IdentityProvidersService, signIns: SignInService) => new SamlService(rt, providers, signIns),
      inject: [AUTH_RUNTIME, IdentityProvidersService, SignInService],
    },
    { provide: TenantsService, useFactory: (rt: AuthRuntime) => new TenantsService(rt), inject: [AUTH_RUNTIME] },
    { provide: TenantProvisioning, useFactory: (tenants: TenantsService, users: UsersService) => new TenantProvisioning(tenants, users), inject: [TenantsService, UsersService] },
    {
      provide: BootstrapService,
      useFactory: (config: AuthConfig, tenants: TenantsService, provisioning: TenantProvisioning) => new BootstrapService(config.AUTH_BOOTSTRAP_TOKEN_FILE, tenants, provisioning),
      inject: [AUTH_CONFIG, TenantsService, TenantProvisioning],
    },
  ],
})
export class AuthModule {}
