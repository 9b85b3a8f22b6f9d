import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { infra } from './infra';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface CallOptions {
  method?: string;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is (malformed JSON; another content type through `headers`). */
  raw?: string | Buffer;
  token?: string;
  headers?: Record<string, string>;
  /** Client certificate and key (PEM) for mTLS. */
  cert?: string;
  key?: string;
  timeoutMs?: number;
}

/**
 * The one HTTPS JSON client of tests, benchmarks and scripts: calls a service on
 * 127.0.0.1:<port>, trusting the development CA (TLS 1.3, SNI localhost), with an
 * optional client certificate. Never throws for an HTTP status; the body is parsed as
 * JSON when it is JSON.
 */
export function httpsCaller(port: number, defaults: Pick<CallOptions, 'token' | 'cert' | 'key'> = {}) {
  let ca: Buffer | undefined;
  return function call(path: string, options: CallOptions = {}): Promise<Reply> {
    ca ??= readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const o = { ...defaults, ...options };
    const payload = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    const headers: Record<string, string> = {
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
      ...o.headers,
    };
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path, method: o.method ?? (payload !== undefined ? 'POST' : 'GET'), ca, headers, servername: 'localhost', cert: o.cert, key: o.key, agent: false, timeout: o.timeoutMs ?? 30_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (body += c));
          res.on('end', () => {
            let json: unknown;
            try {
              json = body ? JSON.parse(body) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${o.method ?? 'GET'} ${path}: no answer within ${o.timeoutMs ?? 30_000} ms`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  };
}

export type HttpsCall = ReturnType<typeof httpsCaller>;
