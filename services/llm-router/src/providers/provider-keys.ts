import { PalisadeError } from '@palisade/contracts';
import type { ProviderDefinition } from '../catalog/catalog.events';
import type { ProviderKeys } from '../completions/completions.service';

/**
 * Provider keys: a provider without a key reference (a private model inside the perimeter,
 * the stand-in) needs none. Reading a referenced key from the credential service's vault
 * is not wired yet (issue 14, README "Gaps"): such a provider is refused, fail-closed,
 * rather than called without its key or with a key kept anywhere else.
 */
export class VaultProviderKeys implements ProviderKeys {
  async keyFor(_tenantId: string, provider: ProviderDefinition): Promise<string | undefined> {
    if (!provider.apiKeySecretId) return undefined;
    throw new PalisadeError('unavailable', `the key of provider ${provider.providerId} cannot be read from the vault yet: refused`);
  }
}
