import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { infra } from '@palisade/testing';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  raw?: string;
  token?: string;
  headers?: Record<string, string>;
  cert?: string;
  key?: string;
}

/** HTTPS calls to a service on 127.0.0.1:<port>, trusting the development CA. */
export function httpsCaller(port: number) {
  return function call(path: string, o: CallOptions = {}): Promise<Reply> {
    const ca = readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'));
    const payload = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    const headers: Record<string, string> = { ...(payload ? { 'content-type': 'application/json' } : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...o.headers };
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: o.method ?? (payload ? 'POST' : 'GET'), ca, headers, servername: 'localhost', cert: o.cert, key: o.key, agent: false }, (res) => {
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
      });
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  };
}

/**
 * The OpenLDAP of deploy/local/ldap.sh as an identity provider: its LDAP settings (as the
 * admin API takes them; palisade-admins → admin, engineering → member, a mapped group
 * required), the provider's bind password and the seeded users' passwords.
 */
export const testDirectory = {
  settings: (url = infra('LDAP_URL'), startTls = false) => {
    const base = infra('LDAP_BASE_DN');
    return {
      url,
      startTls,
      caCertificate: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8'),
      bindDn: infra('LDAP_BIND_DN'),
      userBaseDn: `ou=people,${base}`,
      groupBaseDn: `ou=groups,${base}`,
      groupRoles: { 'palisade-admins': 'admin', engineering: 'member' },
      requireMappedGroup: true,
    };
  },
  bindPassword: () => readFileSync(infra('LDAP_BIND_PASSWORD_FILE'), 'utf8').trim(),
  seededPasswords: (): Record<string, string> => Object.fromEntries(readFileSync(infra('LDAP_SEED_PASSWORDS_FILE'), 'utf8').trim().split('\n').map((l) => l.split(' '))),
};
