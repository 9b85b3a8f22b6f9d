import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, type AccessTokenClaims } from '@palisade/auth-verifier';

/**
 * Signs access tokens of the auth-verifier contract with a key the test made (EdDSA),
 * standing in for the auth service; the service under test is given `jwks` as AUTH_JWKS
 * and verifies them for real.
 */
export class TestTokenIssuer {
  private constructor(
    private readonly key: KeyLike,
    private readonly kid: string,
    private readonly audience: string,
    readonly jwks: string,
  ) {}

  /** `audience`: the service's, e.g. audienceOf('policy'). */
  static async create(audience: string): Promise<TestTokenIssuer> {
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const kid = `test-${randomUUID()}`;
    const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'EdDSA' };
    return new TestTokenIssuer(privateKey, kid, audience, JSON.stringify({ keys: [jwk] }));
  }

  token(claims: Pick<AccessTokenClaims, 'sub' | 'tid' | 'ptp'> & Partial<Pick<AccessTokenClaims, 'scp' | 'sid' | 'act' | 'teams'>>): Promise<string> {
    const { sub, tid, ptp, scp, sid, act, teams } = claims;
    return new SignJWT({ tid, ptp, ...(scp ? { scp } : {}), ...(sid ? { sid } : {}), ...(act ? { act } : {}), ...(teams ? { teams } : {}) })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(this.audience)
      .setSubject(sub)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(this.key);
  }
}
