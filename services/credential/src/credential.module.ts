import { Module } from '@nestjs/common';
import { PalisadeError, type EventFactoryContext } from '@palisade/contracts';
import type { EventStore } from '@palisade/eventsourcing';
import { PolicyClient } from '@palisade/policy-client';
import { connectedEventStore, PLATFORM, type Platform } from '@palisade/service-kit';
import { ScopeAccessPolicy, type CredentialAccessPolicy } from './access/access-policy';
import { PolicyAccessPolicy } from './access/policy-access-policy';
import { CREDENTIAL_CONFIG, loadCredentialConfig, type CredentialConfig } from './credential.config';
import type { Clock, CredentialSettings } from './credential.settings';
import { SecretMaterial } from './crypto/secret-material';
import { AwsKmsKeyProvider } from './keys/aws-kms-key-provider';
import { keyProviders, type KeyProvider, type KeyProviders } from './keys/key-provider';
import { LocalKeyProvider } from './keys/local-key-provider';
import { Pkcs11KeyProvider } from './keys/pkcs11-key-provider';
import { KeyringController } from './keyring/keyring.controller';
import { KeyringRepository } from './keyring/keyring.repository';
import { KeyringService } from './keyring/keyring.service';
import { LeasesController } from './leases/leases.controller';
import { LeasesRepository } from './leases/leases.repository';
import { LeasesService } from './leases/leases.service';
import { MaintenanceScheduler } from './maintenance/maintenance.scheduler';
import { MaintenanceService } from './maintenance/maintenance.service';
import { RandomTokenRotator, RotatorRegistry } from './rotation/rotator';
import { SecretsController } from './secrets/secrets.controller';
import { SecretsRepository } from './secrets/secrets.repository';
import { SecretsService } from './secrets/secrets.service';
import { ServiceSecretsRepository } from './service-secrets/service-secrets.repository';
import { ServiceSecretsRpc } from './service-secrets/service-secrets.rpc';
import { ServiceSecretsService } from './service-secrets/service-secrets.service';
import { PostgresCiphertextStore, SecretsManagerCiphertextStore, type CiphertextStore } from './storage/ciphertext-store';

export interface CredentialDependencies {
  store: EventStore;
  /** The connected TypeORM data source, handed only to the repositories. */
  dataSource: ConstructorParameters<typeof KeyringRepository>[0];
  schema: string;
  providers: KeyProviders;
  storage: CiphertextStore;
  policy: CredentialAccessPolicy;
  rotators: RotatorRegistry;
  eventContext: EventFactoryContext;
  settings: CredentialSettings;
  clock?: Clock;
  /** Concurrent group-commit transactions for lease grants and redemptions. */
  commitLanes?: number;
}

export interface CredentialRepositories {
  keyring: KeyringRepository;
  secrets: SecretsRepository;
  leases: LeasesRepository;
  serviceSecrets: ServiceSecretsRepository;
}

export interface CredentialServices {
  keyring: KeyringService;
  secrets: SecretsService;
  leases: LeasesService;
  serviceSecrets: ServiceSecretsService;
  maintenance: MaintenanceService;
  repositories: CredentialRepositories;
}

/**
 * The credential features wired together: each service gets its repository and the
 * narrow parts (`Pick<>`s) of the others it needs, nothing more. The module builds the
 * service with it; tests and the benchmark build a vault over their own schema with it.
 */
export function createCredentialServices(d: CredentialDependencies): CredentialServices {
  const now = d.clock ?? (() => new Date());
  const repositories: CredentialRepositories = {
    keyring: new KeyringRepository(d.dataSource, d.schema),
    secrets: new SecretsRepository(d.dataSource, d.schema),
    leases: new LeasesRepository(d.dataSource, d.schema, { commitLanes: d.commitLanes }),
    serviceSecrets: new ServiceSecretsRepository(d.dataSource, d.schema),
  };
  const material = new SecretMaterial(d.providers, d.storage, now);
  const common = { policy: d.policy, eventContext: d.eventContext, now };
  const keyring = new KeyringService({ ...common, store: d.store, repo: repositories.keyring, providers: d.providers, settings: d.settings });
  const secrets = new SecretsService({
    ...common,
    store: d.store,
    repo: repositories.secrets,
    keyrings: repositories.keyring,
    keyring,
    material,
    rotators: d.rotators,
    settings: d.settings,
  });
  const leases = new LeasesService({
    ...common,
    repo: repositories.leases,
    material,
    limits: { defaultTtlSeconds: d.settings.leaseDefaultTtlSeconds, maxTtlSeconds: d.settings.leaseMaxTtlSeconds, maxUses: d.settings.leaseMaxUses },
  });
  const serviceSecrets = new ServiceSecretsService({ secrets, lookups: repositories.secrets, repo: repositories.serviceSecrets, eventContext: d.eventContext, now });
  const maintenance = new MaintenanceService({ secrets, lookups: repositories.secrets, leases: repositories.leases, settings: d.settings, now });
  return { keyring, secrets, leases, serviceSecrets, maintenance, repositories };
}

const starting = () => new PalisadeError('unavailable', 'the vault is starting');

function connected<T>(value: T | undefined): T {
  if (!value) throw starting();
  return value;
}

/**
 * The key providers CREDENTIAL_KEY_PROVIDERS names, opened once the platform is connected
 * (a PKCS#11 token or a key file that is not there yet is retried as a startup step);
 * `unavailable` before.
 */
class StartedKeyProviders implements KeyProviders {
  private providers: KeyProviders | undefined;

  constructor(private readonly config: CredentialConfig) {}

  get started(): boolean {
    return this.providers !== undefined;
  }

  start(): void {
    if (this.providers) return;
    const c = this.config;
    const list: KeyProvider[] = [];
    for (const name of c.CREDENTIAL_KEY_PROVIDERS) {
      if (name === 'local') list.push(new LocalKeyProvider({ masterKeyFile: c.masterKeyFile!, keystoreDir: c.keystoreDir! }));
      if (name === 'pkcs11') list.push(new Pkcs11KeyProvider({ library: c.PKCS11_LIBRARY!, tokenLabel: c.PKCS11_TOKEN_LABEL!, pinFile: c.PKCS11_PIN_FILE! }));
      if (name === 'aws-kms') list.push(new AwsKmsKeyProvider({ region: c.AWS_REGION!, endpoint: c.AWS_KMS_ENDPOINT }));
    }
    this.providers = keyProviders(list);
  }

  get(name: Parameters<KeyProviders['get']>[0]): KeyProvider {
    return connected(this.providers).get(name);
  }

  names() {
    return connected(this.providers).names();
  }

  async closeAll(): Promise<void> {
    await this.providers?.closeAll();
  }
}

/**
 * The access policy CREDENTIAL_ACCESS_POLICY names. With `policy`, a PolicyClient on the
 * platform's NATS connection, built once connected; its cache follows policy events
 * through the durable `credential-policy-cache`. Until then every decision is refused.
 */
function accessPolicyFor(platform: Platform, config: CredentialConfig): CredentialAccessPolicy {
  if (config.CREDENTIAL_ACCESS_POLICY === 'scopes') return new ScopeAccessPolicy();
  let client: PolicyClient | undefined;
  platform.afterConnect(async () => {
    if (client) return;
    const c = new PolicyClient({ nc: connected(platform.nats), timeoutMs: config.CREDENTIAL_POLICY_TIMEOUT_MS, logger: platform.logger });
    try {
      await c.listen('credential');
    } catch (error) {
      await c.close(); // retried as a startup step: leave no subscription behind
      throw error;
    }
    client = c;
    platform.logger.info({ accessPolicy: 'policy' }, 'credential decisions through the policy service');
  });
  platform.beforeClose(async () => client?.close());
  return new PolicyAccessPolicy(() => client);
}

/**
 * The wiring, and the only place that knows the platform: the access policy, the key
 * providers and the ciphertext store, the repositories on the platform's data source and
 * the services; starts the key providers and the maintenance scheduler once connected,
 * and stops them with the platform.
 */
function wire(platform: Platform, config: CredentialConfig): CredentialServices {
  const c = config;
  const policy = accessPolicyFor(platform, c);
  const providers = new StartedKeyProviders(c);
  const storage: CiphertextStore =
    c.CREDENTIAL_STORAGE === 'aws-secrets-manager'
      ? new SecretsManagerCiphertextStore({ region: c.AWS_REGION!, endpoint: c.AWS_SECRETS_MANAGER_ENDPOINT, prefix: c.CREDENTIAL_SECRETS_MANAGER_PREFIX })
      : new PostgresCiphertextStore();
  const services = createCredentialServices({
    store: connectedEventStore(platform, 'the vault is starting'),
    dataSource: () => connected(platform.dataSource),
    schema: platform.options.config.PG_SCHEMA,
    providers,
    storage,
    policy,
    rotators: new RotatorRegistry([new RandomTokenRotator()]),
    eventContext: platform.eventContext,
    settings: {
      defaultProvider: c.CREDENTIAL_DEFAULT_KEY_PROVIDER,
      defaultCipher: c.CREDENTIAL_DEFAULT_CIPHER,
      defaultRotationDays: c.CREDENTIAL_ROTATION_DAYS,
      defaultOverlapSeconds: c.CREDENTIAL_OVERLAP_SECONDS,
      overdueAfterDays: c.CREDENTIAL_OVERDUE_AFTER_DAYS,
      leaseDefaultTtlSeconds: c.CREDENTIAL_LEASE_TTL_SECONDS,
      leaseMaxTtlSeconds: 60,
      leaseMaxUses: c.CREDENTIAL_LEASE_MAX_USES,
    },
  });
  const scheduler = new MaintenanceScheduler(services.maintenance, c.CREDENTIAL_MAINTENANCE_INTERVAL_MS, platform.logger);
  platform.afterConnect(async () => {
    if (providers.started) return;
    providers.start();
    platform.logger.info({ keyProviders: providers.names(), storage: storage.backend }, 'vault ready');
    scheduler.start();
  });
  platform.beforeClose(async () => {
    scheduler.stop();
    await providers.closeAll();
    if (storage instanceof SecretsManagerCiphertextStore) storage.close();
  });
  return services;
}

const CREDENTIAL_SERVICES = Symbol('CREDENTIAL_SERVICES');

const serviceOf = <K extends Exclude<keyof CredentialServices, 'repositories'>>(token: abstract new (...args: never[]) => CredentialServices[K], key: K) => ({
  provide: token,
  useFactory: (services: CredentialServices) => services[key],
  inject: [CREDENTIAL_SERVICES],
});

/**
 * The credential vault: secrets under envelope encryption, tenant key rings (local,
 * PKCS#11, AWS KMS; BYOK), lifecycle events, just-in-time leases. Health, metrics,
 * docs, the event store, the outbox and NATS come from @palisade/service-kit.
 * The access policy is a port: token scopes or the policy service (CREDENTIAL_ACCESS_POLICY).
 */
@Module({
  controllers: [SecretsController, LeasesController, KeyringController],
  providers: [
    { provide: CREDENTIAL_CONFIG, useFactory: () => loadCredentialConfig() },
    { provide: CREDENTIAL_SERVICES, useFactory: (platform: Platform, config: CredentialConfig) => wire(platform, config), inject: [PLATFORM, CREDENTIAL_CONFIG] },
    serviceOf(KeyringService, 'keyring'),
    serviceOf(SecretsService, 'secrets'),
    serviceOf(LeasesService, 'leases'),
    serviceOf(ServiceSecretsService, 'serviceSecrets'),
    ServiceSecretsRpc,
  ],
})
export class CredentialModule {}
