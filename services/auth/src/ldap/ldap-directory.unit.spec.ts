import { AndFilter, EqualityFilter } from 'ldapts';
import { rolesOf } from './ldap-directory';

describe('LDAP directory adapter', () => {
  it('escapes filter values as RFC 4515 says (no injection through the username)', () => {
    const filter = new AndFilter({ filters: [new EqualityFilter({ attribute: 'objectClass', value: 'inetOrgPerson' }), new EqualityFilter({ attribute: 'uid', value: 'alice)(objectClass=*' })] });
    expect(filter.toString()).toBe('(&(objectClass=inetOrgPerson)(uid=alice\\29\\28objectClass=\\2a))');
    expect(new EqualityFilter({ attribute: 'uid', value: 'a\\b\u0000*' }).toString()).toBe('(uid=a\\5cb\\00\\2a)');
  });

  it('maps groups to roles, refusing users in no mapped group when the provider requires one', () => {
    const settings = { groupRoles: { 'palisade-admins': 'admin' as const, engineering: 'member' as const }, requireMappedGroup: true };
    expect(rolesOf(['engineering', 'palisade-admins', 'other'], settings)).toEqual(['admin', 'member']);
    expect(rolesOf(['engineering'], settings)).toEqual(['member']);
    expect(rolesOf(['finance'], settings)).toBeUndefined();
    expect(rolesOf([], { ...settings, requireMappedGroup: false })).toEqual(['member']);
  });
});
