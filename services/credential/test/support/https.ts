import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { audienceOf } from '@palisade/auth-verifier';
import { infra, TestTokenIssuer } from '@palisade/testing';

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

/** Tokens for the credential service, signed as the auth service would (see TestTokenIssuer). */
export const TestIssuer = {
  create: () => TestTokenIssuer.create(audienceOf('credential')),
};
export type TestIssuer = TestTokenIssuer;
