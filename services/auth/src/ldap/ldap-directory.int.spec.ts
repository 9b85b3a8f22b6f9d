import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { infra } from '@palisade/testing';
import type { LdapSettings } from '../identity-providers/identity-providers.events';
import { authenticate } from './ldap-directory';

/**
 * The directory adapter against the real OpenLDAP of deploy/local/ldap.sh, whose seed
 * has nested groups: platform-operators ∋ palisade-admins ∋ alice; everyone ∋ staff ∋
 * engineering ∋ alice, bob and staff ∋ finance ∋ carol; loop-a ∋ bob, loop-b and
 * loop-b ∋ loop-a (a cycle).
 */
describe('LDAP directory adapter (OpenLDAP)', () => {
  const passwords = () => Object.fromEntries(readFileSync(infra('LDAP_SEED_PASSWORDS_FILE'), 'utf8').trim().split('\n').map((l) => l.split(' '))) as Record<string, string>;
  const bindPassword = () => readFileSync(infra('LDAP_BIND_PASSWORD_FILE'), 'utf8').trim();
  const base = infra('LDAP_BASE_DN');
  const settings = (nestedGroups?: LdapSettings['nestedGroups']): LdapSettings => ({
    url: infra('LDAP_URL'),
    startTls: false,
    caCertificate: readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt'), 'utf8'),
    bindDn: infra('LDAP_BIND_DN'),
    userBaseDn: `ou=people,${base}`,
    userAttribute: 'uid',
    userObjectClass: 'inetOrgPerson',
    groupBaseDn: `ou=groups,${base}`,
    groupObjectClass: 'groupOfNames',
    groupMemberAttribute: 'member',
    groupRoles: {},
    requireMappedGroup: false,
    ...(nestedGroups ? { nestedGroups } : {}),
  });

  it('reads the groups listing the user, only those, by default (and for providers configured before nesting existed)', async () => {
    const pw = passwords();
    for (const nesting of [undefined, 'direct'] as const) {
      expect((await authenticate(settings(nesting), bindPassword(), 'alice', pw.alice))?.groups.sort()).toEqual(['engineering', 'palisade-admins']);
      expect((await authenticate(settings(nesting), bindPassword(), 'bob', pw.bob))?.groups.sort()).toEqual(['engineering', 'loop-a']);
    }
  });

  it('follows nested groups level by level when asked, each group once (a cycle ends)', async () => {
    const pw = passwords();
    const alice = await authenticate(settings('recursive'), bindPassword(), 'alice', pw.alice);
    expect(alice?.groups.sort()).toEqual(['engineering', 'everyone', 'palisade-admins', 'platform-operators', 'staff']);
    const bob = await authenticate(settings('recursive'), bindPassword(), 'bob', pw.bob);
    expect(bob?.groups.sort()).toEqual(['engineering', 'everyone', 'loop-a', 'loop-b', 'staff']);
    const carol = await authenticate(settings('recursive'), bindPassword(), 'carol', pw.carol);
    expect(carol?.groups.sort()).toEqual(['everyone', 'finance', 'staff']);
  });

  it('still refuses a wrong password and an unknown user, nested groups or not', async () => {
    const pw = passwords();
    expect(await authenticate(settings('recursive'), bindPassword(), 'alice', `${pw.alice}x`)).toBeUndefined();
    expect(await authenticate(settings('recursive'), bindPassword(), 'nobody', pw.alice)).toBeUndefined();
  });
});
