import { request as httpsRequest } from 'node:https';
import { PalisadeError } from '@palisade/contracts';

/** Whom a secret is released for: the lease is bound to the tenant, the sandbox's session and the tool. */
export interface LeaseContext {
  tenantId: string;
  sessionId: string;
  sandboxId: string;
  tool: string;
  secretId: string;
}

/** The proxy's port to the vault: the value of a secret, through a lease, for one request. */
export interface CredentialLeases {
  value(context: LeaseContext): Promise<string>;
}

export interface TlsMaterial {
  cert: string;
  key: string;
  ca: string;
}

export interface CredentialServiceLeasesOptions {
  /** e.g. `https://127.0.0.1:14103` */
  baseUrl: string;
  /** A bearer token allowed `credential:use` for the tenant (the grant side; see the README's gaps). */
  grantToken: (context: LeaseContext) => Promise<string>;
  /**
   * The orchestrator's client certificate (SPIFFE id of sandbox-orchestrator) and key, and
   * the CA of the credential service; a function is read per request (the service's
   * `ServiceIdentity.tlsOptions()`, which renews without a restart).
   */
  tls: TlsMaterial | (() => TlsMaterial);
  timeoutMs?: number;
  ttlSeconds?: number;
}

/**
 * The credential service adapter: `POST /v1/leases` (one use, short TTL) then
 * `POST /internal/v1/leases/redeem` over mTLS with the orchestrator's client certificate.
 * The credential service records the read (`credential.secret.read`) before answering.
 */
export class CredentialServiceLeases implements CredentialLeases {
  constructor(private readonly options: CredentialServiceLeasesOptions) {}

  async value(context: LeaseContext): Promise<string> {
    const bearer = await this.options.grantToken(context);
    const lease = await this.post<{ token?: unknown }>('/v1/leases', { secretId: context.secretId, sessionId: context.sessionId, tool: context.tool, ttlSeconds: this.options.ttlSeconds ?? 30, uses: 1 }, { authorization: `Bearer ${bearer}` });
    if (typeof lease.token !== 'string') throw new PalisadeError('unavailable', 'the credential service granted no lease token');
    const redeemed = await this.post<{ value?: unknown }>('/internal/v1/leases/redeem', { token: lease.token, tenantId: context.tenantId, sessionId: context.sessionId, tool: context.tool }, {});
    if (typeof redeemed.value !== 'string') throw new PalisadeError('unavailable', 'the credential service redeemed no value');
    return redeemed.value;
  }

  private post<T>(path: string, body: unknown, headers: Record<string, string>): Promise<T> {
    const url = new URL(path, this.options.baseUrl);
    const payload = Buffer.from(JSON.stringify(body));
    const tls = typeof this.options.tls === 'function' ? this.options.tls() : this.options.tls;
    return new Promise<T>((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(payload.length), ...headers },
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          minVersion: 'TLSv1.3',
          timeout: this.options.timeoutMs ?? 3000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) {
              // the body of an error never holds a value; only the status and the code are passed on
              let code = '';
              try {
                code = String((JSON.parse(text) as { code?: unknown }).code ?? '');
              } catch {
                // not JSON
              }
              // a grant refused as unauthenticated: most often a token not issued for the credential service
              const hint = res.statusCode === 401 ? " (the execution's token must be valid for the credential service: its audience must include palisade:credential)" : '';
              reject(new PalisadeError(res.statusCode === 404 ? 'not_found' : res.statusCode === 409 ? 'conflict' : 'unavailable', `credential service ${path}: ${res.statusCode} ${code}`.trim() + hint));
              return;
            }
            try {
              resolve(JSON.parse(text) as T);
            } catch {
              reject(new PalisadeError('unavailable', `credential service ${path}: not JSON`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (error) => reject(new PalisadeError('unavailable', `credential service ${path}: ${error.message}`)));
      req.end(payload);
    });
  }
}
