import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCa, issueCertificate } from '@palisade/pki';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, AccessTokenVerifier, audienceOf, certificateThumbprint, RevocationList } from './index';

describe('AccessTokenVerifier', () => {
  let privateKey: KeyLike;
  let jwk: JWK;
  let verifier: AccessTokenVerifier;
  let revocations: RevocationList;
  const now = () => Math.floor(Date.now() / 1000);

  beforeAll(async () => {
    const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    privateKey = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' };
  });
  beforeEach(() => {
    revocations = new RevocationList();
    verifier = new AccessTokenVerifier({ keys: createLocalJWKSet({ keys: [jwk] }), audience: audienceOf('policy'), revocations });
  });

  const token = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    new SignJWT({ tid: 'acme', ptp: 'user', sid: 's-1', scp: ['policy:read'], ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: ACCESS_TOKEN_TYPE, ...header })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience((claims.aud as string) ?? audienceOf('policy'))
      .setSubject('u-1')
      .setJti((claims.jti as string) ?? 'j-1')
      .setIssuedAt((claims.iat as number) ?? now())
      .setExpirationTime((claims.exp as number) ?? now() + 300)
      .sign(privateKey);

  it('turns a valid token into the principal', async () => {
    const { principal } = await verifier.verify(await token());
    expect(principal).toEqual({ type: 'user', id: 'u-1', tenantId: 'acme', sessionId: 's-1', scopes: ['policy:read'] });
  });

  it.each([
    ['expired', { exp: Math.floor(Date.now() / 1000) - 60, iat: Math.floor(Date.now() / 1000) - 400 }, 'access token expired'],
    ['for another service', { aud: audienceOf('credential') }, 'access token claim aud is invalid'],
    ['with an unknown principal type', { ptp: 'robot' }, 'unknown principal type'],
    ['without a tenant', { tid: undefined }, 'claim tid is invalid'],
  ])('refuses a token %s', async (_label, claims, reason) => {
    await expect(verifier.verify(await token(claims as Record<string, unknown>))).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringContaining(reason) });
  });

  it('refuses alg none and HMAC with the public key (key-type confusion)', async () => {
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: ACCESS_TOKEN_TYPE })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ iss: ACCESS_TOKEN_ISSUER, aud: audienceOf('policy'), sub: 'u-1', tid: 'acme', ptp: 'user', jti: 'x', iat: now(), exp: now() + 60 }),
    ).toString('base64url')}.`;
    await expect(verifier.verify(unsigned)).rejects.toMatchObject({ code: 'unauthenticated' });
    const hmac = await new SignJWT({ tid: 'acme', ptp: 'user' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(audienceOf('policy'))
      .setSubject('u-1')
      .setJti('h')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(Buffer.from(JSON.stringify(jwk)));
    await expect(verifier.verify(hmac)).rejects.toMatchObject({ message: 'access token algorithm not allowed' });
  });

  it('refuses a token signed by another key, or with a tampered payload', async () => {
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT({ tid: 'acme', ptp: 'user' })
      .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: ACCESS_TOKEN_TYPE })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(audienceOf('policy'))
      .setSubject('u-1')
      .setJti('f')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(other.privateKey);
    await expect(verifier.verify(forged)).rejects.toMatchObject({ message: 'access token signature is invalid' });
    const [h, p, s] = (await token()).split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, tid: 'evil' })).toString('base64url')}.${s}`;
    await expect(verifier.verify(tampered)).rejects.toMatchObject({ message: 'access token signature is invalid' });
    await expect(verifier.verify('not.a.jwt')).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('refuses revoked tokens, sessions and principals at once', async () => {
    const t = await token({ jti: 'j-revoked' });
    await verifier.verify(t);
    revocations.revokeToken('j-revoked', now() + 300);
    await expect(verifier.verify(t)).rejects.toMatchObject({ message: 'access token rejected: token revoked' });
    revocations.revokeSession('s-1', now());
    await expect(verifier.verify(await token({ jti: 'j-2' }))).rejects.toMatchObject({ message: 'access token rejected: session revoked' });
    revocations.revokeSubject('acme', 'u-1', now());
    await expect(verifier.verify(await token({ jti: 'j-3', sid: 's-2' }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
    // A token issued after the revocation (a new sign-in) is accepted again.
    await expect(verifier.verify(await token({ jti: 'j-4', sid: 's-3', iat: now() + 2 }))).resolves.toBeDefined();
  });

  it('enforces certificate binding (RFC 8705)', async () => {
    const { ca } = await ensureCa(mkdtempSync(join(tmpdir(), 'binding-ca-')));
    const cert = new X509Certificate((await issueCertificate(ca, { kind: 'service', name: 'policy' })).certPem);
    const bound = await token({ cnf: { 'x5t#S256': certificateThumbprint(cert) } });
    await expect(verifier.verify(bound, { clientCertificate: cert })).resolves.toBeDefined();
    await expect(verifier.verify(bound)).rejects.toMatchObject({ message: expect.stringContaining('not presented') });
    await expect(verifier.verify(await token({ cnf: { 'x5t#S256': 'AAAA' } }), { clientCertificate: cert })).rejects.toMatchObject({
      message: 'access token is bound to another client certificate',
    });
  });

  it('forgets revocations no live token can match', () => {
    revocations.revokeToken('old', 100);
    revocations.revokeSession('s-old', 100);
    revocations.prune(100 + 3601);
    expect(revocations.size()).toBe(0);
  });
});
