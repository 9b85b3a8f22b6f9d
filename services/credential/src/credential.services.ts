import type { EventFactoryContext } from '@palisade/contracts';
import type { EventStore } from '@palisade/eventsourcing';
import type { CredentialAccessPolicy } from './access/access-policy';
import type { Clock, CredentialSettings } from './credential.settings';
import { SecretMaterial } from './crypto/secret-material';
import type { KeyProviders } from './keys/key-provider';
import { KeyringRepository } from './keyring/keyring.repository';
import { KeyringService } from './keyring/keyring.service';
import { LeasesRepository } from './leases/leases.repository';
import { LeasesService } from './leases/leases.service';
import { MaintenanceService } from './maintenance/maintenance.service';
import type { RotatorRegistry } from './rotation/rotator';
import { SecretsRepository } from './secrets/secrets.repository';
import { SecretsService } from './secrets/secrets.service';
import { ServiceSecretsRepository } from './service-secrets/service-secrets.repository';
import { ServiceSecretsService } from './service-secrets/service-secrets.service';
import type { CiphertextStore } from './storage/ciphertext-store';

export interface CredentialDependencies {
  store: EventStore;
  /** The TypeORM data source, handed only to the repositories. */
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
 * narrow parts (`Pick<>`s) of the others it needs, nothing more. Built once the
 * platform is connected (the event store and the data source exist only then).
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
