import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { createRemoteJWKSet } from 'jose';
import { AccessTokenVerifier, audienceOf, RevocationList } from '@palisade/auth-verifier';
import { connectNats } from '@palisade/nats';
import { createLogger } from '@palisade/observability';
import { ServiceIdentity } from '@palisade/pki';
import { RevocationFeed } from '@palisade/service-kit';
import { infra } from '@palisade/testing';

// The one HTTPS JSON client of tests (@palisade/testing).
export { httpsCaller, type CallOptions, type Reply } from '@palisade/testing';

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

/**
 * The test process as another Palisade service (policy) watching the auth service on
 * `port`, as the platform wires one: its own NATS identity, the revocation feed, and a
 * verifier of tokens for its audience.
 */
export async function watchAsPolicy(port: number, connectionName: string) {
  const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), name: 'policy' });
  const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: connectionName });
  const revocations = new RevocationList();
  const feed = new RevocationFeed({ nc, service: 'policy', revocations, logger: createLogger({ service: 'policy', level: 'silent' }) });
  await feed.start();
  const verifier = new AccessTokenVerifier({
    keys: createRemoteJWKSet(new URL(`https://127.0.0.1:${port}/.well-known/jwks.json`), { agent: new Agent({ ca: identity.current().caPem }), cooldownDuration: 0 }),
    audience: audienceOf('policy'),
    revocations,
  });
  return {
    identity,
    nc,
    feed,
    verifier,
    async stop(): Promise<void> {
      await feed.stop();
      await nc.drain().catch(() => undefined);
      identity.stop();
    },
  };
}
