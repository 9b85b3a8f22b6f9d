import { assertSessionEnrolmentAllowed, secondFactorStep } from './mfa-challenge';

const enrolled = { mfaEnrolled: true };
const none = { mfaEnrolled: false };
const mandatory = { mfaRequired: true };
const optional = { mfaRequired: false };

describe('second factor at sign-in', () => {
  it.each(['oidc', 'saml', 'password', 'ldap'] as const)('a tenant with mandatory 2FA asks it of %s sign-ins: enrolment first, then verification', (method) => {
    expect(secondFactorStep(method, none, mandatory)).toBe('enrol');
    expect(secondFactorStep(method, enrolled, mandatory)).toBe('verify');
  });

  it('where 2FA is optional, an enrolled user’s password and LDAP sign-ins need it; OIDC and SAML rely on the provider', () => {
    expect(secondFactorStep('password', enrolled, optional)).toBe('verify');
    expect(secondFactorStep('ldap', enrolled, optional)).toBe('verify');
    expect(secondFactorStep('oidc', enrolled, optional)).toBeUndefined();
    expect(secondFactorStep('saml', enrolled, optional)).toBeUndefined();
    expect(secondFactorStep('password', none, optional)).toBeUndefined();
  });

  it('under mandatory 2FA, enrolment needs the one-time grant of a sign-in, not an access token', () => {
    expect(() => assertSessionEnrolmentAllowed(mandatory)).toThrow(expect.objectContaining({ code: 'forbidden', message: expect.stringContaining('enrolment grant') }));
    expect(() => assertSessionEnrolmentAllowed(optional)).not.toThrow();
  });
});
