import { createHash } from 'node:crypto';
import { SAML, ValidateInResponseTo, type CacheProvider } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import { PalisadeError } from '@palisade/contracts';
import type { AuthConfig } from '../auth.config';
import type { Transactions } from '../transactions';
import type { SsoRepository } from './sso.repository';
import type { SamlSettings } from '../identity-providers/identity-providers.events';
import type { IdentityProvidersService } from '../identity-providers/identity-providers.service';
import type { SignInService } from '../sign-in/sign-in.service';

const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const REQUEST_TTL_MS = 600_000;
const refused = (why: string) => new PalisadeError('unauthenticated', `SAML sign-in refused: ${why}`);
const digest = (...parts: string[]) => createHash('sha256').update(parts.join('\u0000')).digest();

/**
 * SAML 2.0 service provider per tenant and provider (@node-saml/node-saml): SP-initiated
 * login (HTTP-Redirect AuthnRequest), responses at the ACS (HTTP-POST) with signed
 * assertions required (and signed responses when the provider says so), issuer,
 * audience, time window and InResponseTo checked by node-saml against requests kept in
 * PostgreSQL (shared by every instance, usable once); the bearer Recipient (which
 * node-saml does not check) and assertion replay checked here; SP metadata served.
 */
export class SamlService {
  constructor(
    private readonly transactions: Transactions,
    private readonly ssoRepo: Pick<SsoRepository, 'save' | 'take' | 'peek' | 'firstUseOfAssertion'>,
    private readonly config: Pick<AuthConfig, 'publicUrl'>,
    private readonly providers: Pick<IdentityProvidersService, 'withSecret'>,
    private readonly signIns: Pick<SignInService, 'signInExternal'>,
  ) {}

  entityId(tenantId: string, providerId: string): string {
    return `${this.config.publicUrl}/v1/tenants/${tenantId}/sso/saml/${providerId}`;
  }

  acsUrl(tenantId: string, providerId: string): string {
    return `${this.entityId(tenantId, providerId)}/acs`;
  }

  async metadata(tenantId: string, providerId: string): Promise<string> {
    const { settings } = await this.providers.withSecret(tenantId, providerId, 'saml');
    return this.sp(tenantId, providerId, settings.saml).generateServiceProviderMetadata(null, null);
  }

  /** Where to send the browser: the IdP's SSO URL with a deflated AuthnRequest whose ID we remember. */
  async begin(tenantId: string, providerId: string): Promise<string> {
    const { settings } = await this.providers.withSecret(tenantId, providerId, 'saml');
    return this.sp(tenantId, providerId, settings.saml).getAuthorizeUrlAsync('', undefined, {});
  }

  /** The IdP posted its Response: validate it completely, then sign the user in. */
  async acs(tenantId: string, providerId: string, samlResponse: string, sourceAddress: string, now = new Date()) {
    const { settings } = await this.providers.withSecret(tenantId, providerId, 'saml');
    const sp = this.sp(tenantId, providerId, settings.saml);
    let profile: Awaited<ReturnType<SAML['validatePostResponseAsync']>>['profile'];
    try {
      ({ profile } = await sp.validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (e) {
      throw refused((e as Error).message.slice(0, 300));
    }
    if (!profile?.nameID) throw refused('no subject NameID');
    const assertion = new DOMParser().parseFromString(profile.getAssertionXml!(), 'text/xml').documentElement;
    if (!assertion || assertion.namespaceURI !== ASSERTION_NS || assertion.localName !== 'Assertion') throw refused('no assertion');
    const acs = this.acsUrl(tenantId, providerId);
    const confirmations = Array.from(assertion.getElementsByTagNameNS(ASSERTION_NS, 'SubjectConfirmation'));
    const recipientOk = confirmations.some(
      (c) => c.getAttribute('Method') === BEARER && Array.from(c.getElementsByTagNameNS(ASSERTION_NS, 'SubjectConfirmationData')).some((d) => d.getAttribute('Recipient') === acs),
    );
    if (!recipientOk) throw refused(`the assertion is not for this recipient (${acs})`);
    const assertionId = assertion.getAttribute('ID');
    if (!assertionId) throw refused('the assertion has no ID');
    const notOnOrAfter = Array.from(assertion.getElementsByTagNameNS(ASSERTION_NS, 'Conditions'))[0]?.getAttribute('NotOnOrAfter');
    const keepUntil = new Date(Math.max(now.getTime() + REQUEST_TTL_MS, notOnOrAfter ? Date.parse(notOnOrAfter) || 0 : 0));
    const first = await this.transactions.inTransaction((tx) => this.ssoRepo.firstUseOfAssertion(tx, digest(tenantId, providerId, assertionId), keepUntil));
    if (!first) throw refused('this assertion was used before (replay)');
    const groupsValue = settings.saml.groupsAttribute ? (profile as Record<string, unknown>)[settings.saml.groupsAttribute] : undefined;
    const groups = (Array.isArray(groupsValue) ? groupsValue : [groupsValue]).filter((g): g is string => typeof g === 'string');
    const email = typeof (profile as Record<string, unknown>).email === 'string' ? ((profile as Record<string, unknown>).email as string) : undefined;
    return this.signIns.signInExternal(
      {
        tenantId,
        providerId,
        method: 'saml',
        externalId: profile.nameID,
        groups,
        ...(email ? { email } : {}),
        settings: { groupRoles: settings.saml.groupRoles, groupTeams: settings.saml.groupTeams, requireMappedGroup: false },
        sourceAddress,
      },
      now,
    );
  }

  private sp(tenantId: string, providerId: string, settings: SamlSettings): SAML {
    return new SAML({
      issuer: this.entityId(tenantId, providerId),
      callbackUrl: this.acsUrl(tenantId, providerId),
      audience: this.entityId(tenantId, providerId),
      entryPoint: settings.ssoUrl,
      idpIssuer: settings.idpEntityId,
      idpCert: settings.idpCertificates,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: settings.wantResponseSigned,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: REQUEST_TTL_MS,
      cacheProvider: this.requests(tenantId, providerId),
      acceptedClockSkewMs: 5000,
      maxAssertionAgeMs: REQUEST_TTL_MS,
      identifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
    });
  }

  /** node-saml's memory of AuthnRequest IDs (InResponseTo), in PostgreSQL for every instance. */
  private requests(tenantId: string, providerId: string): CacheProvider {
    const key = (requestId: string) => digest('saml', tenantId, providerId, requestId);
    return {
      saveAsync: async (requestId, value) => {
        await this.transactions.inTransaction((tx) =>
          this.ssoRepo.save(tx, key(requestId), { tenantId, providerId, protocol: 'saml', secret: null, nonce: value, audience: [] }, new Date(Date.now() + REQUEST_TTL_MS)),
        );
        return { value, createdAt: Date.now() };
      },
      getAsync: async (requestId) => (await this.transactions.inTransaction((tx) => this.ssoRepo.peek(tx, key(requestId), 'saml', new Date()))) ?? null,
      removeAsync: async (requestId) => {
        if (requestId === null) return null;
        const taken = await this.transactions.inTransaction((tx) => this.ssoRepo.take(tx, key(requestId), 'saml', new Date()));
        return taken ? requestId : null;
      },
    };
  }
}
