import type { DomainEvent } from '@palisade/eventsourcing';
import type { TenantRole } from '../sessions/token-issuer';

export type IdentityProviderType = 'oidc' | 'saml' | 'ldap';

/** An LDAP / Active Directory group (its cn) to a Palisade role. */
export type GroupRoleMapping = Record<string, TenantRole>;

export interface LdapSettings {
  /** ldaps://host:port, or ldap://host:port with startTls (plain LDAP is refused). */
  url: string;
  startTls: boolean;
  /** PEM of the CA that signed the directory's certificate (else the system's). */
  caCertificate?: string;
  /** The account that searches users and groups (its password is the provider's secret). */
  bindDn: string;
  userBaseDn: string;
  /** uid (OpenLDAP) or sAMAccountName (Active Directory). */
  userAttribute: string;
  userObjectClass: string;
  groupBaseDn: string;
  groupObjectClass: string;
  /** Attribute of a group listing its members' DNs (member, uniqueMember). */
  groupMemberAttribute: string;
  groupRoles: GroupRoleMapping;
  /** Directory / IdP group → team id: members of the group join the team at sign-in (absent: none). */
  groupTeams?: Readonly<Record<string, string>>;
  /** Users in no mapped group are refused (true) or signed in as members (false). */
  requireMappedGroup: boolean;
  /**
   * `direct`: the groups listing the user. `recursive`: also the groups listing those
   * groups, and so on (nested groups, as Active Directory and groupOfNames allow).
   * Absent in providers configured before it existed: `direct`.
   */
  nestedGroups?: 'direct' | 'recursive';
}

export interface OidcSettings {
  /** Discovery at <issuer>/.well-known/openid-configuration. */
  issuer: string;
  clientId: string;
  /** PEM of the CA of the provider's TLS certificate (else the system's). */
  caCertificate?: string;
  scopes: string[];
  /** Claim holding group names, mapped to roles like LDAP groups. */
  groupsClaim?: string;
  groupRoles: GroupRoleMapping;
  /** Directory / IdP group → team id: members of the group join the team at sign-in (absent: none). */
  groupTeams?: Readonly<Record<string, string>>;
}

export interface SamlSettings {
  idpEntityId: string;
  ssoUrl: string;
  /** PEM certificates whose keys may sign assertions. */
  idpCertificates: string[];
  /** Assertions are always required to be signed; this also requires the Response to be. */
  wantResponseSigned: boolean;
  groupsAttribute?: string;
  groupRoles: GroupRoleMapping;
  /** Directory / IdP group → team id: members of the group join the team at sign-in (absent: none). */
  groupTeams?: Readonly<Record<string, string>>;
}

export type ProviderSettings = { type: 'ldap'; ldap: LdapSettings } | { type: 'oidc'; oidc: OidcSettings } | { type: 'saml'; saml: SamlSettings };

/**
 * Stream `identity-provider-<tenant>.<providerId>`. Settings only: the secret (LDAP bind
 * password, OIDC client secret) never appears in an event or a log; it is kept by the
 * `IdpSecretStore` (the credential service, or sealed locally in development), auth's
 * `identity_provider_secrets` holding what the store answered, and `secretChanged` says
 * only that it was replaced.
 */
export type IdentityProviderEvent =
  | DomainEvent<'auth.identity-provider.configured', { providerId: string; enabled: boolean; settings: ProviderSettings; secretChanged: boolean }>
  | DomainEvent<'auth.identity-provider.removed', { providerId: string }>;
