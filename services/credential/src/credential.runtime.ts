import { PalisadeError } from '@palisade/contracts';
import { PolicyClient } from '@palisade/policy-client';
import type { Platform } from '@palisade/service-kit';
import { ScopeAccessPolicy, type CredentialAccessPolicy } from './access/access-policy';
import { PolicyAccessPolicy } from './access/policy-access-policy';
import type { CredentialConfig } from './credential.config';
import { createCredentialServices, type CredentialServices } from './credential.services';
import { AwsKmsKeyProvider } from './keys/aws-kms-key-provider';
import { keyProviders, type KeyProvider, type KeyProviders } from './keys/key-provider';
import { LocalKeyProvider } from './keys/local-key-provider';
import { Pkcs11KeyProvider } from './keys/pkcs11-key-provider';
import { MaintenanceScheduler } from './maintenance/maintenance.scheduler';
import { RandomTokenRotator, RotatorRegistry } from './rotation/rotator';
import { PostgresCiphertextStore, SecretsManagerCiphertextStore, type CiphertextStore } from './storage/ciphertext-store';

export const CREDENTIAL_RUNTIME = Symbol('credential.runtime');

/**
 * The access policy CREDENTIAL_ACCESS_POLICY names. With `policy`, a PolicyClient on the
 * platform's NATS connection, built once connected; its cache follows policy events
 * through the durable `credential-policy-cache`. Until then every decision is refused.
 */
export function accessPolicyFor(platform: Platform, config: CredentialConfig): CredentialAccessPolicy {
  if (config.CREDENTIAL_ACCESS_POLICY === 'scopes') return new ScopeAccessPolicy();
  let client: PolicyClient | undefined;
  platform.afterConnect(async () => {
    if (client) return;
    const c = new PolicyClient({ nc: platform.nats!, timeoutMs: config.CREDENTIAL_POLICY_TIMEOUT_MS, logger: platform.logger });
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
 * Builds the key providers, the ciphertext store and the credential services once the
 * platform is connected (the event store and the data source exist only then), and
 * runs the maintenance scheduler. Only the module's provider factories read it.
 */
export class CredentialRuntime {
  private current: CredentialServices | undefined;
  private providers: KeyProviders | undefined;
  private storage: CiphertextStore | undefined;
  private scheduler: MaintenanceScheduler | undefined;
  private stopped = false;

  constructor(
    private readonly platform: Platform,
    private readonly config: CredentialConfig,
    private readonly policy: CredentialAccessPolicy = new ScopeAccessPolicy(),
  ) {
    platform.afterConnect(() => this.start());
    platform.beforeClose(() => this.stop());
  }

  get services(): CredentialServices {
    if (!this.current) throw new PalisadeError('unavailable', 'the vault is starting');
    return this.current;
  }

  private async start(): Promise<void> {
    if (this.current) return;
    const c = this.config;
    const list: KeyProvider[] = [];
    for (const name of c.CREDENTIAL_KEY_PROVIDERS) {
      if (name === 'local') list.push(new LocalKeyProvider({ masterKeyFile: c.masterKeyFile!, keystoreDir: c.keystoreDir! }));
      if (name === 'pkcs11') list.push(new Pkcs11KeyProvider({ library: c.PKCS11_LIBRARY!, tokenLabel: c.PKCS11_TOKEN_LABEL!, pinFile: c.PKCS11_PIN_FILE! }));
      if (name === 'aws-kms') list.push(new AwsKmsKeyProvider({ region: c.AWS_REGION!, endpoint: c.AWS_KMS_ENDPOINT }));
    }
    this.providers = keyProviders(list);
    this.storage =
      c.CREDENTIAL_STORAGE === 'aws-secrets-manager'
        ? new SecretsManagerCiphertextStore({ region: c.AWS_REGION!, endpoint: c.AWS_SECRETS_MANAGER_ENDPOINT, prefix: c.CREDENTIAL_SECRETS_MANAGER_PREFIX })
        : new PostgresCiphertextStore();
    this.current = createCredentialServices({
      store: this.platform.eventStore!,
      dataSource: this.platform.dataSource!,
      schema: this.platform.options.config.PG_SCHEMA,
      providers: this.providers,
      storage: this.storage,
      policy: this.policy,
      rotators: new RotatorRegistry([new RandomTokenRotator()]),
      eventContext: this.platform.eventContext,
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
    this.platform.logger.info({ keyProviders: this.providers.names(), storage: this.storage.backend }, 'vault ready');
    this.scheduler = new MaintenanceScheduler(this.current.maintenance, c.CREDENTIAL_MAINTENANCE_INTERVAL_MS, this.platform.logger);
    if (!this.stopped) this.scheduler.start();
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    this.scheduler?.stop();
    await this.providers?.closeAll();
    if (this.storage instanceof SecretsManagerCiphertextStore) this.storage.close();
  }
}
