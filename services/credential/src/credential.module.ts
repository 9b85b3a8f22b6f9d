import { Module } from '@nestjs/common';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { CREDENTIAL_ACCESS_POLICY, type CredentialAccessPolicy } from './access/access-policy';
import { CREDENTIAL_CONFIG, loadCredentialConfig, type CredentialConfig } from './credential.config';
import { accessPolicyFor, CREDENTIAL_RUNTIME, CredentialRuntime } from './credential.runtime';
import { KEYRING_SERVICE, LEASES_SERVICE, SECRETS_SERVICE, SERVICE_SECRETS_SERVICE, type Ready } from './credential.tokens';
import { KeyringController } from './keyring/keyring.controller';
import { LeasesController } from './leases/leases.controller';
import { SecretsController } from './secrets/secrets.controller';
import { ServiceSecretsRpc } from './service-secrets/service-secrets.rpc';

/** Each controller gets a getter of its one service (built once the platform is connected). */
function ready<T>(token: symbol, pick: (runtime: CredentialRuntime) => T) {
  return { provide: token, useFactory: (runtime: CredentialRuntime): Ready<T> => () => pick(runtime), inject: [CREDENTIAL_RUNTIME] };
}

/**
 * The credential vault: secrets under envelope encryption, tenant key rings (local,
 * PKCS#11, AWS KMS; BYOK), lifecycle events, just-in-time leases. Health, metrics,
 * docs, the event store, the outbox and NATS come from @palisade/service-kit.
 * The access policy is a port (CREDENTIAL_ACCESS_POLICY): token scopes or the policy service.
 */
@Module({
  controllers: [SecretsController, LeasesController, KeyringController],
  providers: [
    { provide: CREDENTIAL_CONFIG, useFactory: () => loadCredentialConfig() },
    {
      provide: CREDENTIAL_ACCESS_POLICY,
      useFactory: (platform: Platform, config: CredentialConfig): CredentialAccessPolicy => accessPolicyFor(platform, config),
      inject: [PLATFORM, CREDENTIAL_CONFIG],
    },
    {
      provide: CREDENTIAL_RUNTIME,
      useFactory: (platform: Platform, config: CredentialConfig, policy: CredentialAccessPolicy) => new CredentialRuntime(platform, config, policy),
      inject: [PLATFORM, CREDENTIAL_CONFIG, CREDENTIAL_ACCESS_POLICY],
    },
    ready(KEYRING_SERVICE, (rt) => rt.services.keyring),
    ready(SECRETS_SERVICE, (rt) => rt.services.secrets),
    ready(LEASES_SERVICE, (rt) => rt.services.leases),
    ready(SERVICE_SECRETS_SERVICE, (rt) => rt.services.serviceSecrets),
    ServiceSecretsRpc,
  ],
})
export class CredentialModule {}
