import { Inject, Injectable } from '@nestjs/common';
import { rpcSubject } from '@palisade/contracts';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { parse } from '../validation';
import { deleteServiceSecretRequest, putServiceSecretRequest, readServiceSecretRequest } from './service-secrets.dto';
import { admitCaller } from './service-secrets.policy';
import { ServiceSecretsService } from './service-secrets.service';

export const SERVICE_SECRET_PUT = rpcSubject('credential', 'service-secret-put');
export const SERVICE_SECRET_READ = rpcSubject('credential', 'service-secret-read');
export const SERVICE_SECRET_DELETE = rpcSubject('credential', 'service-secret-delete');

/**
 * Secrets Palisade services keep for themselves (auth: identity-provider client secrets
 * and bind passwords), over NATS request-reply. NATS permissions let only auth ask these
 * methods; the asking service (whose inbox gets the answer) must own a scope (`auth:idp`),
 * else `forbidden`; a secret outside its scope or of another tenant is `not_found`.
 *
 *   service-secret-put     {tenantId, name, value}      → {secretId, version} (never the value)
 *   service-secret-read    {tenantId, secretId, purpose} → {secretId, version, value}; credential.secret.read commits first
 *   service-secret-delete  {tenantId, secretId}          → {secretId, versionsDestroyed}
 */
@Injectable()
export class ServiceSecretsRpc {
  constructor(
    @Inject(ServiceSecretsService) serviceSecrets: Pick<ServiceSecretsService, 'put' | 'read' | 'delete'>,
    @Inject(PLATFORM) platform: Pick<Platform, 'answerRequests'> & { logger: { debug(obj: object, msg: string): void } },
  ) {
    const asked = (subject: string, caller: string, tenant: string, secret?: string) => platform.logger.debug({ subject, caller, tenantId: tenant, secretId: secret }, 'service-secret request');
    platform.answerRequests({
      [SERVICE_SECRET_PUT]: (payload, subject, caller) => {
        const asker = admitCaller(caller);
        const { tenantId, name, value } = parse(putServiceSecretRequest, payload);
        asked(subject, asker, tenantId);
        return serviceSecrets.put(asker, tenantId, name, Buffer.from(value, 'utf8'));
      },
      [SERVICE_SECRET_READ]: (payload, subject, caller) => {
        const asker = admitCaller(caller);
        const { tenantId, secretId, purpose } = parse(readServiceSecretRequest, payload);
        asked(subject, asker, tenantId, secretId);
        return serviceSecrets.read(asker, tenantId, secretId, purpose);
      },
      [SERVICE_SECRET_DELETE]: (payload, subject, caller) => {
        const asker = admitCaller(caller);
        const { tenantId, secretId } = parse(deleteServiceSecretRequest, payload);
        asked(subject, asker, tenantId, secretId);
        return serviceSecrets.delete(asker, tenantId, secretId);
      },
    });
  }
}
