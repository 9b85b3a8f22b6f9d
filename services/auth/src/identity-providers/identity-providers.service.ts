import { PalisadeError, type Principal } from '@palisade/contracts';
import { streamName } from '@palisade/eventsourcing';
import type { AuthRuntime } from '../auth.runtime';
import { open, seal } from '../crypto/key-encryption';
import type { ProviderSettings } from './identity-providers.events';
import type { IdentityProviderRow } from './identity-providers.repository';

const providerStream = (tenantId: string, providerId: string) => streamName('identity-provider', `${tenantId}.${providerId}`);
const secretContext = (tenantId: string, providerId: string) => `idp:${tenantId}/${providerId}`;

/**
 * Identity providers of a tenant (OIDC, SAML, LDAP), configured by its administrators.
 * Secrets are sealed under the key-encryption key, as signing keys are, until the
 * credential service holds them; they are never returned, logged or put in an event.
 */
export class IdentityProvidersService {
  constructor(private readonly rt: AuthRuntime) {}

  async configure(admin: Principal, providerId: string, input: { enabled: boolean; settings: ProviderSettings; secret?: string }) {
    const sealed = input.secret === undefined ? undefined : seal(this.rt.config.keyEncryptionKey, Buffer.from(input.secret, 'utf8'), secretContext(admin.tenantId, providerId));
    const result = await this.rt.identityProviders.handle(
      providerStream(admin.tenantId, providerId),
      {
        type: 'ConfigureProvider',
        data: { providerId, enabled: input.enabled, settings: input.settings, secretProvided: sealed !== undefined },
        metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
      },
      undefined,
      async (tx) => {
        if (sealed) await this.rt.identityProvidersRepo.saveSecret(tx, admin.tenantId, providerId, sealed);
      },
    );
    return { providerId, version: result.version };
  }

  async remove(admin: Principal, providerId: string): Promise<void> {
    await this.rt.identityProviders.handle(providerStream(admin.tenantId, providerId), {
      type: 'RemoveProvider',
      data: { providerId },
      metadata: { tenantId: admin.tenantId, actor: { type: admin.type, id: admin.id }, now: new Date() },
    });
  }

  async list(admin: Principal) {
    return (await this.rt.read((tx) => this.rt.identityProvidersRepo.list(tx, admin.tenantId))).map(view);
  }

  async get(admin: Principal, providerId: string) {
    return view(await this.enabledOrAny(admin.tenantId, providerId, false));
  }

  /** The provider with its secret, for signing in through it (404 when unknown or disabled). */
  async withSecret<T extends ProviderSettings['type']>(tenantId: string, providerId: string, type: T): Promise<{ settings: Extract<ProviderSettings, { type: T }>; secret: string }> {
    const provider = await this.enabledOrAny(tenantId, providerId, true);
    if (provider.settings.type !== type) throw new PalisadeError('not_found', `identity provider ${providerId} is not an ${type} provider`);
    const sealed = await this.rt.read((tx) => this.rt.identityProvidersRepo.sealedSecret(tx, tenantId, providerId));
    const secret = sealed ? open(this.rt.config.keyEncryptionKey, sealed, secretContext(tenantId, providerId)).toString('utf8') : '';
    return { settings: provider.settings as Extract<ProviderSettings, { type: T }>, secret };
  }

  private async enabledOrAny(tenantId: string, providerId: string, enabledOnly: boolean): Promise<IdentityProviderRow> {
    const provider = await this.rt.read((tx) => this.rt.identityProvidersRepo.find(tx, tenantId, providerId));
    if (!provider || (enabledOnly && !provider.enabled)) throw new PalisadeError('not_found', 'identity provider not found');
    return provider;
  }
}

function view(p: IdentityProviderRow) {
  return { providerId: p.providerId, type: p.settings.type, enabled: p.enabled, settings: p.settings, secretSet: p.secretSet, version: p.version };
}
