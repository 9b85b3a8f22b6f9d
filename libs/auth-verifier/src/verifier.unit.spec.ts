import { X509Certificate } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCa, issueCertificate } from '@palisade/pki';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { ACCESS_TOKEN_ISSUER, ACCESS_TOKEN_TYPE, AccessTokenVerifier, audienceOf, certificateThumbprint, issuedAtMs, RevocationList, REVOCATION_SKEW_MS } from './index';

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
      .setSubject((claims.sub as string) ?? 'u-1')
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
    revocations.revokeSession('s-1', Date.now());
    await expect(verifier.verify(await token({ jti: 'j-2' }))).rejects.toMatchObject({ message: 'access token rejected: session revoked' });
    revocations.revokeSubject('acme', 'u-1', Date.now());
    await expect(verifier.verify(await token({ jti: 'j-3', sid: 's-2' }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
    // A token issued after the revocation (a new sign-in) is accepted again.
    await expect(verifier.verify(await token({ jti: 'j-4', sid: 's-3', iat: now() + 2 }))).resolves.toBeDefined();
  });

  describe('agent tokens (issue 12)', () => {
    const agentClaims = { sub: 'agent-7', ptp: 'agent', act: { sub: 'alice' }, teams: ['platform'], dept: 'platform', sid: 'apikey-k1' };

    it('turns act (RFC 8693 object, or the older bare string), teams and dept into the principal', async () => {
      const { principal } = await verifier.verify(await token(agentClaims));
      expect(principal).toEqual({ type: 'agent', id: 'agent-7', tenantId: 'acme', actingFor: 'alice', teams: ['platform'], department: 'platform', sessionId: 'apikey-k1', scopes: ['policy:read'] });
      expect((await verifier.verify(await token({ ...agentClaims, act: 'bob' }))).principal.actingFor).toBe('bob');
      expect((await verifier.verify(await token({ ...agentClaims, act: { other: 'x' } }))).principal.actingFor).toBeUndefined();
    });

    it('refuses an agent token once the agent is revoked, or the user it acts for, to the millisecond', async () => {
      const ms = (now() - 5) * 1000 + 200;
      const at = (t: number) => ({ iat: Math.floor(t / 1000), iat_ms: t });
      revocations.revokeSubject('acme', 'alice', ms);
      await expect(verifier.verify(await token({ ...agentClaims, ...at(ms - 1) }))).rejects.toMatchObject({ message: 'access token rejected: acting user revoked' });
      await expect(verifier.verify(await token({ ...agentClaims, ...at(ms + REVOCATION_SKEW_MS + 1) }))).resolves.toBeDefined();
      revocations.revokeSubject('acme', 'agent-7', ms + 100);
      await expect(verifier.verify(await token({ ...agentClaims, ...at(ms + 50) }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
      // Another agent of alice's, issued after her revocation, is untouched.
      await expect(verifier.verify(await token({ ...agentClaims, sub: 'agent-8', ...at(ms + 50) }))).resolves.toBeDefined();
    });
  });

  describe('revocation of a subject to the millisecond, whatever the second (finding 6)', () => {
    const second = now() - 10;
    const at = (ms: number) => ({ iat: Math.floor(ms / 1000), iat_ms: ms });
    it.each([
      ['mid-second', second * 1000 + 500],
      ['at the first millisecond of a second', second * 1000],
      ['at the last millisecond of a second', second * 1000 + 999],
    ])('a change %s: tokens issued after it are accepted, tokens issued before it are not', async (_label, changedAt) => {
      revocations.revokeSubject('acme', 'u-1', changedAt);
      const after = changedAt + REVOCATION_SKEW_MS + 1;
      const before = changedAt - 1;
      await expect(verifier.verify(await token({ jti: 'after', sid: 'new-session', ...at(after) }))).resolves.toBeDefined();
      await expect(verifier.verify(await token({ jti: 'later', sid: 'new-session', ...at(changedAt + 1500) }))).resolves.toBeDefined();
      await expect(verifier.verify(await token({ jti: 'before', sid: 'old-session', ...at(before) }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
      await expect(verifier.verify(await token({ jti: 'same', sid: 'old-session', ...at(changedAt) }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
    });

    it('refuses, within the stated skew margin, a token another auth instance may have signed before the change', async () => {
      revocations.revokeSubject('acme', 'u-1', second * 1000 + 500);
      await expect(verifier.verify(await token({ ...at(second * 1000 + 500 + REVOCATION_SKEW_MS) }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
      await expect(verifier.verify(await token({ ...at(second * 1000 + 501 + REVOCATION_SKEW_MS) }))).resolves.toBeDefined();
    });

    it('treats a token without iat_ms (or with one that contradicts iat) as issued at the start of its second', async () => {
      revocations.revokeSubject('acme', 'u-1', second * 1000 + 500);
      await expect(verifier.verify(await token({ iat: second }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
      await expect(verifier.verify(await token({ iat: second - 1, iat_ms: second * 1000 + 900 }))).rejects.toMatchObject({ message: 'access token rejected: principal revoked' });
      await expect(verifier.verify(await token({ iat: second + 1 }))).resolves.toBeDefined();
      expect(issuedAtMs({ iat: second })).toBe(second * 1000);
    });

    it('refuses every token of a revoked session, whenever it was issued (a session never comes back)', async () => {
      revocations.revokeSession('s-1', second * 1000 + 500);
      await expect(verifier.verify(await token({ ...at(second * 1000 + 900) }))).rejects.toMatchObject({ message: 'access token rejected: session revoked' });
      await expect(verifier.verify(await token({ sid: 's-other', ...at(second * 1000 + 900) }))).resolves.toBeDefined();
    });
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
    revocations.revokeSession('s-old', 100_000);
    revocations.revokeSubject('acme', 'u-old', 100_000);
    revocations.prune(100 + 3600);
    expect(revocations.size()).toBe(2);
    revocations.prune(100 + 3601);
    expect(revocations.size()).toBe(0);
  });

  describe('with a cache of verified tokens', () => {
    afterEach(() => jest.restoreAllMocks());
    /** A verifier whose key look-ups are counted: one per signature checked. */
    function cached(ttlMs = 5000, max = 100) {
      const local = createLocalJWKSet({ keys: [jwk] });
      const lookups = { n: 0 };
      const revocations = new RevocationList();
      const verifier = new AccessTokenVerifier({ keys: (header, input) => (lookups.n++, local(header, input)), audience: audienceOf('policy'), revocations, cache: { ttlMs, max } });
      return { verifier, lookups, revocations };
    }

    it('checks a token’s signature once within the ttl, and again after it', async () => {
      const { verifier, lookups } = cached(5000);
      const t = await token();
      const first = await verifier.verify(t);
      expect((await verifier.verify(t)).principal).toEqual(first.principal);
      expect(lookups.n).toBe(1);
      const later = Date.now() + 5001;
      jest.spyOn(Date, 'now').mockReturnValue(later);
      await verifier.verify(t);
      expect(lookups.n).toBe(2);
    });

    it('refuses a cached token once revoked (token, session, principal, signing key), with no delay', async () => {
      for (const revoke of [
        (r: RevocationList) => r.revokeToken('j-1', now() + 300),
        (r: RevocationList) => r.revokeSession('s-1', Date.now()),
        (r: RevocationList) => r.revokeSubject('acme', 'u-1', Date.now()),
        (r: RevocationList) => r.revokeKey('k1'),
      ]) {
        const { verifier, revocations } = cached();
        const t = await token();
        await verifier.verify(t);
        revoke(revocations);
        await expect(verifier.verify(t)).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringContaining('rejected') });
      }
    });

    it('never serves a token past its expiry, and still checks the certificate binding on every use', async () => {
      const { verifier, lookups } = cached(60_000);
      const t = await token({ exp: now() + 2 });
      await verifier.verify(t);
      // the clock (Date only) 10 s on: past the expiry and the verifier's 5 s tolerance
      jest.useFakeTimers({ now: Date.now() + 10_000, doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
      try {
        await expect(verifier.verify(t)).rejects.toMatchObject({ message: 'access token expired' });
      } finally {
        jest.useRealTimers();
      }
      expect(lookups.n).toBe(2);
      const { ca } = await ensureCa(mkdtempSync(join(tmpdir(), 'binding-ca-')));
      const cert = new X509Certificate((await issueCertificate(ca, { kind: 'service', name: 'policy' })).certPem);
      const bound = await token({ jti: 'j-bound', cnf: { 'x5t#S256': certificateThumbprint(cert) } });
      await expect(verifier.verify(bound, { clientCertificate: cert })).resolves.toBeDefined();
      await expect(verifier.verify(bound)).rejects.toMatchObject({ message: expect.stringContaining('not presented') });
    });

    it('keeps at most max tokens, and a tampered token never matches a cached one', async () => {
      const { verifier, lookups } = cached(5000, 2);
      const [a, b, c] = await Promise.all(['j-a', 'j-b', 'j-c'].map((jti) => token({ jti })));
      for (const t of [a, b, c]) await verifier.verify(t);
      await verifier.verify(a);
      expect(lookups.n).toBe(4);
      const [head, payload, signature] = c.split('.');
      const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'admin' })).toString('base64url');
      await expect(verifier.verify(`${head}.${forged}.${signature}`)).rejects.toMatchObject({ code: 'unauthenticated' });
    });
  });
});
