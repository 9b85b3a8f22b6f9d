import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, AccessTokenVerifier, audienceOf, RevocationList, signingKeysOf } from './index';

/** A token another service forwards to ask a decision about its holder (the policy service verifies it). */
describe('AccessTokenVerifier, a forwarded token', () => {
  it('skips the certificate binding only when the presenting service says it checked it; everything else still holds', async () => {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' }] });
    const verifier = new AccessTokenVerifier({ keys: signingKeysOf({ jwks, url: 'https://127.0.0.1:1/unused', caPem: '' }), audience: audienceOf('llm-router'), revocations: new RevocationList() });
    const sign = (aud: string) =>
      new SignJWT({ tid: 'acme', ptp: 'agent', act: { sub: 'alice' }, cnf: { 'x5t#S256': 'thumbprint-of-the-agents-certificate' } })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: ACCESS_TOKEN_TYPE })
        .setIssuer(ACCESS_TOKEN_ISSUER)
        .setAudience(aud)
        .setSubject('release-bot')
        .setJti('j-1')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
    const bound = await sign(audienceOf('llm-router'));
    await expect(verifier.verify(bound)).rejects.toMatchObject({ message: 'access token is bound to a client certificate that was not presented' });
    const { principal } = await verifier.verify(bound, { certificateBindingChecked: true });
    expect(principal).toMatchObject({ type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'alice' });
    await expect(verifier.verify(await sign(audienceOf('credential')), { certificateBindingChecked: true })).rejects.toMatchObject({ message: 'access token claim aud is invalid' });
  });
});
