import { DeciderSpecification } from '@palisade/eventsourcing';
import { configureProviderBody } from './identity-providers.dto';
import { identityProviderDecider } from './identity-providers.decider';
import type { IdentityProviderEvent, ProviderSettings } from './identity-providers.events';

const given = DeciderSpecification.for(identityProviderDecider);
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'admin' }, now: new Date('2026-01-01T00:00:00Z') };
const oidc: ProviderSettings = { type: 'oidc', oidc: { issuer: 'https://idp.example.com', clientId: 'palisade', scopes: ['openid'], groupRoles: {} } };
const configured: IdentityProviderEvent = { type: 'auth.identity-provider.configured', data: { providerId: 'okta', enabled: true, settings: oidc, secretChanged: true } };

describe('identity provider decider', () => {
  it('needs a secret for a new OIDC or LDAP provider, and keeps the stored one when none is sent', () => {
    given([]).when({ type: 'ConfigureProvider', data: { providerId: 'okta', enabled: true, settings: oidc, secretProvided: false }, metadata }).thenThrows('validation', 'secret');
    given([]).when({ type: 'ConfigureProvider', data: { providerId: 'okta', enabled: true, settings: oidc, secretProvided: true }, metadata }).then([configured]);
    given([configured])
      .when({ type: 'ConfigureProvider', data: { providerId: 'okta', enabled: false, settings: oidc, secretProvided: false }, metadata })
      .then([{ type: 'auth.identity-provider.configured', data: { providerId: 'okta', enabled: false, settings: oidc, secretChanged: false } }]);
  });

  it('does not change a provider’s type, and removes only what exists', () => {
    const saml: ProviderSettings = { type: 'saml', saml: { idpEntityId: 'x', ssoUrl: 'https://idp.example.com/sso', idpCertificates: ['pem'], wantResponseSigned: false, groupRoles: {} } };
    given([configured]).when({ type: 'ConfigureProvider', data: { providerId: 'okta', enabled: true, settings: saml, secretProvided: false }, metadata }).thenThrows('conflict');
    given([configured]).when({ type: 'RemoveProvider', data: { providerId: 'okta' }, metadata }).then([{ type: 'auth.identity-provider.removed', data: { providerId: 'okta' } }]);
    given([]).when({ type: 'RemoveProvider', data: { providerId: 'okta' }, metadata }).thenThrows('not_found');
  });

  it('refuses LDAP without TLS and OIDC issuers that are not https', () => {
    const ldap = { url: 'ldap://dc.example.com', bindDn: 'cn=svc,dc=example,dc=com', userBaseDn: 'ou=people,dc=example,dc=com', groupBaseDn: 'ou=groups,dc=example,dc=com' };
    expect(configureProviderBody.safeParse({ type: 'ldap', ldap, secret: 's' }).success).toBe(false);
    expect(configureProviderBody.safeParse({ type: 'ldap', ldap: { ...ldap, startTls: true }, secret: 's' }).success).toBe(true);
    expect(configureProviderBody.safeParse({ type: 'oidc', oidc: { issuer: 'http://idp.example.com', clientId: 'c' } }).success).toBe(false);
  });
});
