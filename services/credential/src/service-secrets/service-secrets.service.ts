import { PalisadeError, type EventFactoryContext, type Principal, type ServiceName } from '@palisade/contracts';
import { envelopeOf } from '@palisade/eventsourcing';
import { MAX_ATTEMPTS, type Clock } from '../credential.settings';
import type { SecretRead } from '../secrets/secrets.events';
import type { SecretsRepository } from '../secrets/secrets.repository';
import type { SecretsService } from '../secrets/secrets.service';
import type { ServiceSecretsRepository } from './service-secrets.repository';
import { decidePut, decideRead } from './service-secrets.policy';

export interface ServiceSecretsServiceDependencies {
  secrets: Pick<SecretsService, 'store' | 'storeVersion' | 'decryptCurrent' | 'shredAuthorized'>;
  lookups: Pick<SecretsRepository, 'secret' | 'secretByName'>;
  repo: Pick<ServiceSecretsRepository, 'commitServiceRead'>;
  eventContext: EventFactoryContext;
  now: Clock;
}

/** A service acting on its own secrets (admitted by client certificate, scope-checked by the service-secrets policy). */
const servicePrincipal = (caller: ServiceName, tenantId: string): Principal => ({ type: 'service', id: caller, tenantId });

/**
 * Secrets a Palisade service keeps for itself (auth: identity-provider client secrets and
 * bind passwords), by name. Which caller owns which scope is the pure policy
 * (`service-secrets.policy.ts`); storing, rotating and shredding are the secrets feature's.
 */
export class ServiceSecretsService {
  constructor(private readonly d: ServiceSecretsServiceDependencies) {}

  /**
   * Created under the caller's scope, or rotated when it exists. Events as for any secret,
   * with the service as actor. Answers id and version only.
   */
  async put(caller: ServiceName, tenantId: string, name: string, value: Buffer): Promise<{ secretId: string; version: number }> {
    const principal = servicePrincipal(caller, tenantId);
    try {
      for (let attempt = 1; ; attempt++) {
        const existing = await this.d.lookups.secretByName(tenantId, name);
        const decision = decidePut(caller, existing);
        if (decision.do === 'refuse') throw new PalisadeError(decision.code, decision.message);
        try {
          if (decision.do === 'create') return { secretId: await this.d.secrets.store(principal, { name, value, scopes: [decision.scope], overlapSeconds: 0 }), version: 1 };
          return { secretId: existing!.secretId, version: await this.d.secrets.storeVersion(principal, existing!, { value }) };
        } catch (error) {
          // Two first PUTs of one name raced (or two rotations): decide again on what is there now.
          if (!(error instanceof PalisadeError && error.code === 'conflict') || attempt >= MAX_ATTEMPTS) throw error;
        }
      }
    } finally {
      value.fill(0);
    }
  }

  /**
   * The current value. As for a lease redemption, the `credential.secret.read` event
   * (consumer, purpose) commits, with the secret active at that version and its KEK
   * usable, before the value is returned.
   */
  async read(caller: ServiceName, tenantId: string, secretId: string, purpose: string): Promise<{ secretId: string; version: number; value: string }> {
    const decision = decideRead(caller, await this.d.lookups.secret(tenantId, secretId));
    if (decision.do === 'refuse') throw new PalisadeError(decision.code, decision.message);
    const current = await this.d.secrets.decryptCurrent(tenantId, secretId);
    const metadata = { tenantId, actor: { type: 'service' as const, id: caller }, now: this.d.now() };
    const read: SecretRead = { type: 'credential.secret.read', data: { secretId, version: current.version, consumer: caller, purpose } };
    let recorded = false;
    try {
      recorded = await this.d.repo.commitServiceRead({ tenantId, secretId, version: current.version, kekVersion: current.kekVersion, event: envelopeOf(this.d.eventContext, metadata, read) });
    } finally {
      if (!recorded) current.value.fill(0);
    }
    if (!recorded) throw new PalisadeError('illegal_state', 'the secret was revoked or rotated, or its key revoked, while it was read');
    const value = current.value.toString('utf8');
    current.value.fill(0);
    return { secretId, version: current.version, value };
  }

  /** Hard delete (crypto-shredding), e.g. when auth removes an identity provider. */
  async delete(caller: ServiceName, tenantId: string, secretId: string): Promise<{ secretId: string; versionsDestroyed: number[] }> {
    const decision = decideRead(caller, await this.d.lookups.secret(tenantId, secretId));
    if (decision.do === 'refuse' && decision.code === 'not_found') throw new PalisadeError('not_found', decision.message);
    const { versionsDestroyed } = await this.d.secrets.shredAuthorized(servicePrincipal(caller, tenantId), secretId, `removed by ${caller}`);
    return { secretId, versionsDestroyed };
  }
}
