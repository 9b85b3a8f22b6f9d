import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, audienceOf, RevocationList } from '@palisade/auth-verifier';
import type { Platform } from '@palisade/service-kit';
import { ForwardedTokens } from './forwarded-tokens';

describe('ForwardedTokens', () => {
  let key: KeyLike;
  let tokens: ForwardedTokens;
  let revocations: RevocationList;
  const sign = (aud: string, exp: string | number = '5m', user = 'alice') =>
    new SignJWT({ tid: 'acme', ptp: 'agent', act: { sub: user } })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(aud)
      .setSubject('release-bot')
      .setJti(`j-${Math.random()}`)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(key);

  beforeEach(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    key = pair.privateKey;
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' }] });
    revocations = new RevocationList();
    const platform = { revocations, options: { config: { AUTH_JWKS: jwks, AUTH_JWKS_URL: 'https://127.0.0.1:1/jwks' }, identity: { current: () => ({ caPem: '' }) } } };
    tokens = new ForwardedTokens(platform as unknown as Pick<Platform, 'options' | 'revocations'>);
  });
  afterEach(() => jest.restoreAllMocks());

  it("answers the agent and its user for the asking service's audience only", async () => {
    const token = await sign(audienceOf('llm-router'));
    await expect(tokens.principalOf(token, 'llm-router')).resolves.toMatchObject({ type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'alice' });
    await expect(tokens.principalOf(token, 'credential')).rejects.toMatchObject({ code: 'unauthenticated', message: 'access token claim aud is invalid' });
  });

  it('remembers a verified token, yet refuses it once revoked (agent, its user, the key) or expired', async () => {
    const token = await sign(audienceOf('llm-router'));
    const other = await sign(audienceOf('llm-router'), '5m', 'bob');
    await tokens.principalOf(token, 'llm-router');
    await tokens.principalOf(other, 'llm-router');
    revocations.revokeSubject('acme', 'alice', Date.now() + 10); // the user the agent acts for
    await expect(tokens.principalOf(token, 'llm-router')).rejects.toMatchObject({ message: 'access token rejected: acting user revoked' });
    await expect(tokens.principalOf(other, 'llm-router')).resolves.toMatchObject({ actingFor: 'bob' });
    revocations.revokeKey('k1');
    await expect(tokens.principalOf(other, 'llm-router')).rejects.toMatchObject({ message: expect.stringContaining('access token rejected') });
  });

  it('refuses a remembered token once it expires', async () => {
    const token = await sign(audienceOf('llm-router'), Math.floor(Date.now() / 1000) + 60);
    await tokens.principalOf(token, 'llm-router');
    jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 61_000);
    await expect(tokens.principalOf(token, 'llm-router')).rejects.toMatchObject({ message: 'access token expired' });
  });
});
