import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { TENANT_ROLES } from '../sessions/token-issuer';
import { teamId } from '../teams/teams.dto';

const dn = z.string().min(3).max(512).regex(/^[^\0\n\r]+=[^\0\n\r]+$/, 'must be a distinguished name such as ou=people,dc=example,dc=com');
const attribute = z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'must be an LDAP attribute / object class name');
const pem = z
  .string()
  .max(16384)
  .refine((p) => {
    try {
      new X509Certificate(p);
      return true;
    } catch {
      return false;
    }
  }, 'must be a PEM X.509 certificate');
const groupRoles = z.record(z.string().min(1).max(256), z.enum(TENANT_ROLES)).refine((m) => Object.keys(m).length <= 100, 'at most 100 groups');
const groupTeams = z.record(z.string().min(1).max(256), teamId).refine((m) => Object.keys(m).length <= 100, 'at most 100 groups');
const httpsUrl = z.url({ protocol: /^https$/, error: 'must be an https:// URL' }).max(2048);

const ldap = z
  .strictObject({
    url: z.string().regex(/^ldaps?:\/\/[A-Za-z0-9.:[\]-]+(:\d{1,5})?\/?$/, 'must be ldaps://host[:port] or ldap://host[:port] (with startTls)'),
    startTls: z.boolean().default(false),
    caCertificate: pem.optional(),
    bindDn: dn,
    userBaseDn: dn,
    userAttribute: attribute.default('uid'),
    userObjectClass: attribute.default('inetOrgPerson'),
    groupBaseDn: dn,
    groupObjectClass: attribute.default('groupOfNames'),
    groupMemberAttribute: attribute.default('member'),
    groupRoles: groupRoles.default({}),
    groupTeams: groupTeams.optional(),
    requireMappedGroup: z.boolean().default(false),
    nestedGroups: z.enum(['direct', 'recursive']).default('direct'),
  })
  .refine((s) => s.url.startsWith('ldaps://') || s.startTls, { message: 'plain ldap:// needs startTls: true (credentials never travel in clear)', path: ['startTls'] });

const oidc = z.strictObject({
  issuer: httpsUrl,
  clientId: z.string().min(1).max(256),
  caCertificate: pem.optional(),
  scopes: z.array(z.string().regex(/^[\x21-\x7e]{1,64}$/)).max(20).default(['openid', 'email', 'profile']),
  groupsClaim: z.string().min(1).max(64).optional(),
  groupRoles: groupRoles.default({}),
  groupTeams: groupTeams.optional(),
});

const saml = z.strictObject({
  idpEntityId: z.string().min(1).max(1024),
  ssoUrl: httpsUrl,
  idpCertificates: z.array(pem).min(1).max(4),
  wantResponseSigned: z.boolean().default(false),
  groupsAttribute: z.string().min(1).max(256).optional(),
  groupRoles: groupRoles.default({}),
  groupTeams: groupTeams.optional(),
});

/** The secret travels only in this request, never back out. */
const secret = z.string().min(1).max(1024).optional();

export const configureProviderBody = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ldap'), enabled: z.boolean().default(true), ldap, secret }),
  z.strictObject({ type: z.literal('oidc'), enabled: z.boolean().default(true), oidc, secret }),
  z.strictObject({ type: z.literal('saml'), enabled: z.boolean().default(true), saml, secret }),
]);

export const providerIdParam = z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a provider id: lower case letters, digits, "-"');
