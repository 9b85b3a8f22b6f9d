import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { infra } from '@palisade/testing';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function call(
  port: number,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; cert?: string; key?: string } = {},
): Promise<Reply> {
  const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca, headers, servername: 'localhost', cert: options.cert, key: options.key, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** Signs access tokens as the auth service would, with a key the test made (EdDSA); the service trusts its JWKS. */
export class TestIssuer {
  private constructor(
    private readonly key: KeyLike,
    readonly jwks: string,
    private readonly kid: string,
  ) {}

  static async create(): Promise<TestIssuer> {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const kid = `test-${randomUUID()}`;
    const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'EdDSA' };
    return new TestIssuer(privateKey, JSON.stringify({ keys: [jwk] }), kid);
  }

  token(claims: { sub: string; tid: string; ptp: 'user' | 'agent' | 'service'; scp?: string[]; sid?: string; act?: string }): Promise<string> {
    return new SignJWT({ tid: claims.tid, ptp: claims.ptp, ...(claims.scp ? { scp: claims.scp } : {}), ...(claims.sid ? { sid: claims.sid } : {}), ...(claims.act ? { act: claims.act } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: 'at+jwt' })
      .setIssuer('palisade-auth')
      .setAudience('palisade:credential')
      .setSubject(claims.sub)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.key);
  }
}
