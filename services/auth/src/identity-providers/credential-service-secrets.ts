import { Agent, request } from 'node:https';
import { PalisadeError } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { LocalSealedSecrets, type IdpSecretStore, type StoredIdpSecret } from './idp-secret-store';

export interface CredentialServiceSecretsOptions {
  /** https://host:port of the credential service. */
  url: string;
  /** This service's identity: its client certificate and the platform CA. */
  identity: Pick<ServiceIdentity, 'tlsOptions' | 'onRenew'>;
  /** Secrets sealed locally before the vault was configured, readable until the provider is configured again. */
  legacy: LocalSealedSecrets;
  /** How long a value read stays in memory (0: every sign-in reads, and is audited, again). */
  cacheMs: number;
  timeoutMs?: number;
}

interface Answer {
  status: number;
  json: Record<string, unknown> | undefined;
}

/** The provider's secret's name in the vault (one path segment). */
export const vaultNameOf = (providerId: string) => `idp.${providerId}`;

/**
 * Identity-provider secrets in the credential service, over HTTPS with mutual TLS: auth's
 * own certificate names it, so the vault admits it to its internal service-secret routes
 * (scope `auth:idp`). Every read the vault answers is recorded there
 * (`credential.secret.read`, consumer auth, purpose idp-sign-in) before the value leaves.
 *
 * A read value is kept in memory for `cacheMs` (by secret id and version): a burst of
 * sign-ins, or anyone requesting OIDC login redirects, costs the vault one audited read
 * per provider per period instead of one each. The price: a revocation in the vault is
 * seen here only after that period; a rotation through auth is seen at once (new version).
 */
export class CredentialServiceSecrets implements IdpSecretStore {
  private agent: Agent;
  private readonly cache = new Map<string, { value: string; until: number }>();
  private readonly base: URL;

  constructor(private readonly o: CredentialServiceSecretsOptions) {
    this.base = new URL(o.url);
    this.agent = this.newAgent();
    // Certificates are renewed without a restart: new connections use the new one.
    o.identity.onRenew(() => {
      const old = this.agent;
      this.agent = this.newAgent();
      old.destroy();
    });
  }

  async put(tenantId: string, providerId: string, value: string): Promise<StoredIdpSecret> {
    const r = await this.call('PUT', `${this.path(tenantId)}/${encodeURIComponent(vaultNameOf(providerId))}`, { value });
    const secretId = r.json?.secretId;
    const version = r.json?.version;
    if (r.status !== 200 || typeof secretId !== 'string' || typeof version !== 'number') throw refused('store', r);
    this.forget(secretId);
    return { kind: 'vault', secretId, version };
  }

  async read(tenantId: string, providerId: string, stored: StoredIdpSecret): Promise<string> {
    if (stored.kind === 'sealed') return this.o.legacy.read(tenantId, providerId, stored);
    const key = `${tenantId}\n${stored.secretId}\n${stored.version}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.value;
    const r = await this.call('POST', `${this.path(tenantId)}/${encodeURIComponent(stored.secretId)}/read`, { purpose: 'idp-sign-in' });
    const value = r.json?.value;
    if (r.status !== 200 || typeof value !== 'string') throw refused('read', r);
    if (this.o.cacheMs > 0) {
      this.forget(stored.secretId);
      this.cache.set(key, { value, until: Date.now() + this.o.cacheMs });
    }
    return value;
  }

  async remove(tenantId: string, _providerId: string, stored: StoredIdpSecret): Promise<void> {
    if (stored.kind === 'sealed') return;
    this.forget(stored.secretId);
    const r = await this.call('DELETE', `${this.path(tenantId)}/${encodeURIComponent(stored.secretId)}`);
    if (r.status !== 200 && r.status !== 404) throw refused('delete', r);
  }

  private path(tenantId: string) {
    return `/internal/v1/tenants/${encodeURIComponent(tenantId)}/service-secrets`;
  }

  private forget(secretId: string) {
    for (const key of this.cache.keys()) if (key.split('\n')[1] === secretId) this.cache.delete(key);
  }

  private newAgent() {
    const tls = this.o.identity.tlsOptions();
    return new Agent({ cert: tls.cert, key: tls.key, ca: tls.ca, minVersion: 'TLSv1.3', keepAlive: true, maxSockets: 16 });
  }

  /** One request; the answer's value (reads) is never put in an error or a log. */
  private call(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          protocol: 'https:',
          hostname: this.base.hostname,
          port: this.base.port || 443,
          path,
          method,
          agent: this.agent,
          timeout: this.o.timeoutMs ?? 5000,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let json: Record<string, unknown> | undefined;
            try {
              json = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', () => reject(unreachable()));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => reject(unreachable()));
      req.end(payload);
    });
  }
}

const unreachable = () => new PalisadeError('unavailable', 'the credential service (identity-provider secrets) is unreachable');

/** Says what the vault answered (status and error code), never a value. */
function refused(what: string, r: Answer): PalisadeError {
  const error = r.json?.error as { code?: unknown } | undefined;
  const code = typeof error?.code === 'string' ? ` ${error.code}` : '';
  return new PalisadeError(r.status === 409 ? 'conflict' : 'unavailable', `the credential service refused to ${what} the identity provider’s secret (${r.status}${code})`);
}

/** The vault when CREDENTIAL_URL is configured, else local sealing (development). */
export function idpSecretStore(config: { CREDENTIAL_URL?: string; AUTH_IDP_SECRET_CACHE_SEC: number; keyEncryptionKey: Buffer }, identity: CredentialServiceSecretsOptions['identity']): IdpSecretStore {
  const local = new LocalSealedSecrets(config.keyEncryptionKey);
  if (!config.CREDENTIAL_URL) return local;
  return new CredentialServiceSecrets({ url: config.CREDENTIAL_URL, identity, legacy: local, cacheMs: config.AUTH_IDP_SECRET_CACHE_SEC * 1000 });
}
