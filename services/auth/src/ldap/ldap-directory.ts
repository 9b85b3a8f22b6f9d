import { AndFilter, Client, EqualityFilter, InvalidCredentialsError, OrFilter, type Filter } from 'ldapts';
import type { ConnectionOptions } from 'node:tls';
import { PalisadeError } from '@palisade/contracts';
import type { LdapSettings } from '../identity-providers/identity-providers.events';
import type { TenantRole } from '../sessions/token-issuer';

export interface DirectoryUser {
  dn: string;
  /** The value of the user attribute, as the directory spells it. */
  uid: string;
  email?: string;
  displayName?: string;
  /** cn of every group listing the user's DN (and, with nested groups, of the groups listing those). */
  groups: string[];
}

const TIMEOUT_MS = 5000;
const unreachable = () => new PalisadeError('unavailable', 'the directory does not answer: try again later');

/**
 * LDAP / Active Directory over LDAPS or StartTLS (ldapts). The service account searches
 * the user (filters built from objects, so every value is escaped as RFC 4515 says), the
 * user's own bind checks the password on a separate connection, then the groups listing
 * the user's DN are read (and, for nested groups, the groups listing those). Returns undefined for any wrong credential.
 * `beforeBind` learns the entry the search found (its DN and user attribute as the
 * directory spells them) before the password is tried; it may refuse by throwing.
 */
export async function authenticate(
  settings: LdapSettings,
  bindPassword: string,
  username: string,
  password: string,
  beforeBind?: (entry: Pick<DirectoryUser, 'dn' | 'uid'>) => Promise<void>,
): Promise<DirectoryUser | undefined> {
  // An empty password is an unauthenticated bind (RFC 4513 5.1.2): it would "succeed".
  if (password.length === 0 || username.length === 0) return undefined;
  const service = await connect(settings);
  try {
    await service.bind(settings.bindDn, bindPassword).catch((e: Error) => {
      throw e instanceof InvalidCredentialsError ? new PalisadeError('unavailable', 'the directory refused the provider’s bind account: check its configuration') : unreachable();
    });
    const filter: Filter = new AndFilter({
      filters: [new EqualityFilter({ attribute: 'objectClass', value: settings.userObjectClass }), new EqualityFilter({ attribute: settings.userAttribute, value: username })],
    });
    const users = await service
      .search(settings.userBaseDn, { scope: 'sub', filter, attributes: [settings.userAttribute, 'mail', 'cn', 'displayName'], sizeLimit: 2 })
      .catch(() => {
        throw unreachable();
      });
    if (users.searchEntries.length !== 1) return undefined;
    const entry = users.searchEntries[0];
    const uid = first(entry[settings.userAttribute]) ?? username;
    await beforeBind?.({ dn: entry.dn, uid });
    if (!(await bindsAs(settings, entry.dn, password))) return undefined;
    const groups = await groupsOf(service, settings, entry.dn);
    return {
      dn: entry.dn,
      uid,
      ...optional('email', first(entry.mail)),
      ...optional('displayName', first(entry.displayName) ?? first(entry.cn)),
      groups,
    };
  } finally {
    await service.unbind().catch(() => undefined);
  }
}

/** Nested groups are followed this many levels up at most, and this many groups in all. */
const MAX_NESTING = 10;
const MAX_GROUPS = 1000;
/** Member DNs asked about in one search (an OR filter). */
const DNS_PER_SEARCH = 50;

/**
 * The cn of every group that lists `userDn` as a member and, with `nestedGroups:
 * 'recursive'`, of every group listing one of those groups, level by level (each group
 * once, so cycles end), at most MAX_NESTING levels and MAX_GROUPS groups.
 */
async function groupsOf(service: Client, settings: LdapSettings, userDn: string): Promise<string[]> {
  const found = new Map<string, string | undefined>(); // group DN -> cn
  let members = [userDn];
  for (let level = 0; members.length > 0 && level < (settings.nestedGroups === 'recursive' ? MAX_NESTING : 1); level++) {
    const next: string[] = [];
    for (let i = 0; i < members.length && found.size < MAX_GROUPS; i += DNS_PER_SEARCH) {
      const listed = members.slice(i, i + DNS_PER_SEARCH).map((dn) => new EqualityFilter({ attribute: settings.groupMemberAttribute, value: dn }));
      const result = await service
        .search(settings.groupBaseDn, {
          scope: 'sub',
          filter: new AndFilter({
            filters: [new EqualityFilter({ attribute: 'objectClass', value: settings.groupObjectClass }), listed.length === 1 ? listed[0] : new OrFilter({ filters: listed })],
          }),
          attributes: ['cn'],
          sizeLimit: MAX_GROUPS,
        })
        .catch(() => {
          throw unreachable();
        });
      for (const group of result.searchEntries) {
        if (found.has(group.dn) || found.size >= MAX_GROUPS) continue;
        found.set(group.dn, first(group.cn));
        next.push(group.dn);
      }
    }
    members = next;
  }
  return [...found.values()].filter((cn): cn is string => cn !== undefined);
}

async function bindsAs(settings: LdapSettings, dn: string, password: string): Promise<boolean> {
  const client = await connect(settings);
  try {
    await client.bind(dn, password);
    return true;
  } catch (e) {
    if (e instanceof InvalidCredentialsError) return false;
    throw unreachable();
  } finally {
    await client.unbind().catch(() => undefined);
  }
}

async function connect(settings: LdapSettings): Promise<Client> {
  const tlsOptions: ConnectionOptions = { minVersion: 'TLSv1.2', ...(settings.caCertificate ? { ca: settings.caCertificate } : {}) };
  if (settings.url.startsWith('ldaps://')) return new Client({ url: settings.url, timeout: TIMEOUT_MS, connectTimeout: TIMEOUT_MS, tlsOptions });
  // StartTLS: ldapts would open TLS at once if given tlsOptions here; they go to startTLS.
  const client = new Client({ url: settings.url, timeout: TIMEOUT_MS, connectTimeout: TIMEOUT_MS });
  await client.startTLS({ ...tlsOptions, host: new URL(settings.url).hostname }).catch(() => {
    throw unreachable();
  });
  return client;
}

function first(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** Roles from directory groups; undefined when the provider requires a mapped group and none matched. */
export function rolesOf(groups: readonly string[], settings: Pick<LdapSettings, 'groupRoles' | 'requireMappedGroup'>): string[] | undefined {
  const mapped = new Set(groups.map((g) => settings.groupRoles[g]).filter((r): r is TenantRole => r !== undefined));
  if (mapped.size === 0) return settings.requireMappedGroup ? undefined : ['member'];
  return [...mapped].sort();
}
