import { PalisadeError, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler } from '@palisade/eventsourcing';
import type { Transactions } from '../transactions';
import type { IdentityProviderCommand, IdentityProviderState } from './identity-providers.decider';
import type { IdentityProviderEvent, ProviderSettings } from './identity-providers.events';
import type { IdentityProviderRow, IdentityProvidersRepository } from './identity-providers.repository';
import type { IdpSecretStore, StoredIdpSecret } from './idp-secret-store';

const providerStream = (tenantId: string, providerId: string) => streamName('identity-provider', `${tenantId}.${providerId}`);

/**
 * Identity providers of a tenant (OIDC, SAML, LDAP), configured by its administrators.
 * Secrets go to the `IdpSecretStore` (the credential service, or sealed locally in
 * development); auth's database keeps what the store answers (a reference). They are
 * never returned, logged or put in an event.
 */
export class IdentityProvidersService {
  constructor(
    private readonly transactions: Transactions,
    private readonly providerCommands: CommandHandler<IdentityProviderState, IdentityProviderCommand, IdentityProviderEvent>,
    private readonly identityProvidersRepo: IdentityProvidersRepository,
    private readonly secrets: IdpSecretStore,
    private readonly logger: { warn(fields: object, message: string): void },
  ) {}

  async configure(admin: Principal, providerId: string, input: { enabled: boolean; settings: ProviderSettings; secret?: string }) {
    let stored: StoredIdpSecret | undefined;
    if (input.secret !== undefined) {
      // The store is called before the transaction (no network inside it); a type change
      // the decider would refuse must not replace the working provider's secret first.
      const existing = await this.transactions.inTransaction((tx) => this.identityProvidersRepo.find(tx, admin.tenantId, providerId));
      if (existing && existing.settings.type !== input.settings.type) throw new PalisadeError('conflict', `provider is of type ${existing.settings.type}: remove it to change the type`);
      stored = await this.secrets.put(admin.tenantId, providerId, input.secret);
    }
    const result = await this.providerCommands.handle(
      providerStream(admin.tenantId, providerId),
      {
        type: 'ConfigureProvider',
        data: { providerId, enabled: input.enabled, settings: input.settings, secretProvided: stored !== undefined },
        metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
      },
      undefined,
      async (tx) => {
        if (stored) await this.identityProvidersRepo.saveSecret(tx, admin.tenantId, providerId, stored);
      },
    );
    return { providerId, version: result.version };
  }

  /** Removes the provider (its row and reference go in the same transaction), then destroys its secret in the store. */
  async remove(admin: Principal, providerId: string): Promise<void> {
    const stored = await this.transactions.inTransaction((tx) => this.identityProvidersRepo.storedSecret(tx, admin.tenantId, providerId));
    await this.providerCommands.handle(providerStream(admin.tenantId, providerId), {
      type: 'RemoveProvider',
      data: { providerId },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
    // The provider is gone either way; a secret left in the vault is rotated by the next
    // provider of that id, or deleted there by an administrator.
    if (stored) {
      await this.secrets.remove(admin.tenantId, providerId, stored).catch((e: Error) => this.logger.warn({ providerId, err: e.message }, 'identity provider secret not deleted in the credential service'));
    }
  }

  async list(admin: Principal) {
    return (await this.transactions.inTransaction((tx) => this.identityProvidersRepo.list(tx, admin.tenantId))).map(view);
  }

  async get(admin: Principal, providerId: string) {
    return view(await this.enabledOrAny(admin.tenantId, providerId, false));
  }

  /** The provider with its secret, for signing in through it (404 when unknown or disabled). */
  async withSecret<T extends ProviderSettings['type']>(tenantId: string, providerId: string, type: T): Promise<{ settings: Extract<ProviderSettings, { type: T }>; secret: string }> {
    const provider = await this.enabledOrAny(tenantId, providerId, true);
    if (provider.settings.type !== type) throw new PalisadeError('not_found', `identity provider ${providerId} is not an ${type} provider`);
    // SAML signs in without a secret: no read (and no audited vault read) for it.
    const stored = type === 'saml' ? undefined : await this.transactions.inTransaction((tx) => this.identityProvidersRepo.storedSecret(tx, tenantId, providerId));
    const secret = stored ? await this.secrets.read(tenantId, providerId, stored) : '';
    return { settings: provider.settings as Extract<ProviderSettings, { type: T }>, secret };
  }

  private async enabledOrAny(tenantId: string, providerId: string, enabledOnly: boolean): Promise<IdentityProviderRow> {
    const provider = await this.transactions.inTransaction((tx) => this.identityProvidersRepo.find(tx, tenantId, providerId));
    if (!provider || (enabledOnly && !provider.enabled)) throw new PalisadeError('not_found', 'identity provider not found');
    return provider;
  }
}

function view(p: IdentityProviderRow) {
  return { providerId: p.providerId, type: p.settings.type, enabled: p.enabled, settings: p.settings, secretSet: p.secretSet, version: p.version };
}
