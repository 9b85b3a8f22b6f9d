import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
