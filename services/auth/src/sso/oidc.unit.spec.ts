import { verifiedEmailOf } from './oidc.service';

describe('OIDC e-mail claim', () => {
  it('takes the e-mail only when email_verified is true', () => {
    expect(verifiedEmailOf({ email: 'o@idp.test', email_verified: true })).toBe('o@idp.test');
  });

  it.each([
    ['missing', { email: 'o@idp.test' }],
    ['false', { email: 'o@idp.test', email_verified: false }],
    ['the string "true"', { email: 'o@idp.test', email_verified: 'true' }],
  ])('treats email_verified %s as not verified', (_label, claims) => {
    expect(verifiedEmailOf(claims)).toBeUndefined();
  });
});
