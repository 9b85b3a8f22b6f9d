import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { infra, TestTokenIssuer } from '@palisade/testing';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** HTTPS to a local service, with an access token or a client certificate. */
export function call(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string; cert?: string; key?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca, headers, servername: 'localhost', cert: options.cert, key: options.key, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/**
 * Tokens for the policy service, signed as the auth service would (see TestTokenIssuer),
 * and agent tokens as they are presented to another service (`forwardedTo`), which
 * forwards them with a decision request: one JWKS holds the keys of both.
 */
export class TestIssuer {
  private constructor(
    private readonly issuer: TestTokenIssuer,
    private readonly others: ReadonlyMap<string, TestTokenIssuer>,
  ) {}

  get jwks(): string {
    const keys = [this.issuer, ...this.others.values()].flatMap((i) => (JSON.parse(i.jwks) as { keys: object[] }).keys);
    return JSON.stringify({ keys });
  }

  static async create(forwardingServices: readonly string[] = ['credential', 'llm-router', 'sandbox-orchestrator']): Promise<TestIssuer> {
    const others = new Map<string, TestTokenIssuer>();
    for (const service of forwardingServices) others.set(service, await TestTokenIssuer.create(audienceOf(service)));
    return new TestIssuer(await TestTokenIssuer.create(audienceOf('policy')), others);
  }

  token(p: { tenantId: string; id: string; type?: 'user' | 'agent'; actingFor?: string; scopes?: string[] }): Promise<string> {
    return this.issuer.token({ sub: p.id, tid: p.tenantId, ptp: p.type ?? 'user', act: p.actingFor ? { sub: p.actingFor } : undefined, scp: p.scopes });
  }

  /** An agent's token for `service` (RFC 8693 `act`), as that service would forward it to the policy service. */
  agentToken(service: string, p: { tenantId: string; id: string; actingFor?: string }): Promise<string> {
    const issuer = this.others.get(service);
    if (!issuer) throw new Error(`no issuer for ${service}`);
    return issuer.token({ sub: p.id, tid: p.tenantId, ptp: 'agent', act: p.actingFor ? { sub: p.actingFor } : undefined });
  }
}
