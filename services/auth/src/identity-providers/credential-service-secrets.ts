import { z } from 'zod';
import { PalisadeError, rpcSubject } from '@palisade/contracts';
import { rpcRequest, type NatsConnection } from '@palisade/nats';
import { LocalSealedSecrets, type IdpSecretStore, type StoredIdpSecret } from './idp-secret-store';

/**
 * The credential service's service-secret methods, as auth asks them (NATS request-reply,
 * `palisade.rpc.credential.<method>`; the credential service validates the requests and
 * answers coded errors). Each method: its subject, its request, the result's schema.
 */
const servedSecret = z.object({ secretId: z.string(), version: z.number().int() });
const METHODS = {
  put: { subject: rpcSubject('credential', 'service-secret-put'), result: servedSecret },
  read: { subject: rpcSubject('credential', 'service-secret-read'), result: servedSecret.extend({ value: z.string() }) },
  delete: { subject: rpcSubject('credential', 'service-secret-delete'), result: z.object({ secretId: z.string(), versionsDestroyed: z.array(z.number().int()) }) },
} as const;
interface Requests {
  put: { tenantId: string; name: string; value: string };
  read: { tenantId: string; secretId: string; purpose: 'idp-sign-in' };
  delete: { tenantId: string; secretId: string };
}
type Method = keyof Requests;
type Result<M extends Method> = z.infer<(typeof METHODS)[M]['result']>;

export interface CredentialServiceSecretsOptions {
  /** auth's NATS connection (the platform's; absent until connected): its certificate names auth to the vault. */
  nats: () => NatsConnection | undefined;
  /** Secrets sealed locally before the vault was configured, readable until the provider is configured again. */
  legacy: LocalSealedSecrets;
  /** How long a value read stays in memory (0: every sign-in reads, and is audited, again). */
  cacheMs: number;
  timeoutMs?: number;
}

/** The provider's secret's name in the vault. */
export const vaultNameOf = (providerId: string) => `idp.${providerId}`;

/**
 * Identity-provider secrets in the credential service, asked over NATS request-reply with
 * auth's own certificate: NATS lets only auth ask the service-secret methods, and the
 * vault keeps them under auth's scope `auth:idp`. Every read the vault answers is recorded
 * there (`credential.secret.read`, consumer auth, purpose idp-sign-in) before the value leaves.
 *
 * A read value is kept in memory for `cacheMs` (by secret id and version): a burst of
 * sign-ins, or anyone requesting OIDC login redirects, costs the vault one audited read
 * per provider per period instead of one each. The price: a revocation in the vault is
 * seen here only after that period; a rotation through auth is seen at once (new version).
 */
export class CredentialServiceSecrets implements IdpSecretStore {
  private readonly cache = new Map<string, { value: string; until: number }>();

  constructor(private readonly o: CredentialServiceSecretsOptions) {}

  async put(tenantId: string, providerId: string, value: string): Promise<StoredIdpSecret> {
    const { secretId, version } = await this.ask('put', { tenantId, name: vaultNameOf(providerId), value }).catch(refused('store'));
    this.forget(secretId);
    return { kind: 'vault', secretId, version };
  }

  async read(tenantId: string, providerId: string, stored: StoredIdpSecret): Promise<string> {
    if (stored.kind === 'sealed') return this.o.legacy.read(tenantId, providerId, stored);
    const key = `${tenantId}\n${stored.secretId}\n${stored.version}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.value;
    const { value } = await this.ask('read', { tenantId, secretId: stored.secretId, purpose: 'idp-sign-in' }).catch(refused('read'));
    if (this.o.cacheMs > 0) {
      this.forget(stored.secretId);
      this.cache.set(key, { value, until: Date.now() + this.o.cacheMs });
    }
    return value;
  }

  async remove(tenantId: string, _providerId: string, stored: StoredIdpSecret): Promise<void> {
    if (stored.kind === 'sealed') return;
    this.forget(stored.secretId);
    await this.ask('delete', { tenantId, secretId: stored.secretId }).catch((error: unknown) => {
      if (error instanceof PalisadeError && error.code === 'not_found') return; // already gone
      refused('delete')(error);
    });
  }

  private forget(secretId: string) {
    for (const key of this.cache.keys()) if (key.split('\n')[1] === secretId) this.cache.delete(key);
  }

  /** One typed request; the vault's coded error as it answered it (`unavailable` when nobody answers). */
  private async ask<M extends Method>(method: M, request: Requests[M]): Promise<Result<M>> {
    const nc = this.o.nats();
    if (!nc) throw new PalisadeError('unavailable', 'NATS is not connected');
    const answer = await rpcRequest(nc, METHODS[method].subject, request, { timeoutMs: this.o.timeoutMs });
    const result = METHODS[method].result.safeParse(answer);
    if (!result.success) throw new PalisadeError('internal', `unexpected result from ${METHODS[method].subject}`);
    return result.data as Result<M>;
  }
}

/**
 * What auth's callers learn when the vault refused, by its code and never with a value: a
 * name conflict stays `conflict`; anything else is `unavailable` (a sign-in cannot
 * proceed), the vault's code in the message.
 */
const refused =
  (what: string) =>
  (error: unknown): never => {
    const code = error instanceof PalisadeError ? error.code : 'internal';
    throw new PalisadeError(code === 'conflict' ? 'conflict' : 'unavailable', `the credential service refused to ${what} the identity provider’s secret (${code})`);
  };

/** The vault when AUTH_IDP_SECRETS=vault, else local sealing (development). */
export function idpSecretStore(
  config: { AUTH_IDP_SECRETS: 'vault' | 'local'; AUTH_IDP_SECRET_CACHE_SEC: number; keyEncryptionKey: Buffer },
  nats: CredentialServiceSecretsOptions['nats'],
): IdpSecretStore {
  const local = new LocalSealedSecrets(config.keyEncryptionKey);
  if (config.AUTH_IDP_SECRETS === 'local') return local;
  return new CredentialServiceSecrets({ nats, legacy: local, cacheMs: config.AUTH_IDP_SECRET_CACHE_SEC * 1000 });
}
