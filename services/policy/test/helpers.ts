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

/** Tokens for the policy service, signed as the auth service would (see TestTokenIssuer). */
export class TestIssuer {
  private constructor(private readonly issuer: TestTokenIssuer) {}

  get jwks(): string {
    return this.issuer.jwks;
  }

  static async create(): Promise<TestIssuer> {
    return new TestIssuer(await TestTokenIssuer.create(audienceOf('policy')));
  }

  token(p: { tenantId: string; id: string; type?: 'user' | 'agent'; actingFor?: string; scopes?: string[] }): Promise<string> {
    return this.issuer.token({ sub: p.id, tid: p.tenantId, ptp: p.type ?? 'user', act: p.actingFor, scp: p.scopes });
  }
}
