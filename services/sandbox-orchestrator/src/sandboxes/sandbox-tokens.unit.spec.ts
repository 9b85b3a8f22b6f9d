import { audienceOf } from '@palisade/auth-verifier';
import { TestTokenIssuer } from '@palisade/testing';
import { SandboxTokens } from './sandbox-tokens';

const sandboxId = '01a23c19-4a21-749a-b216-8a7770beb807';
const other = '01a23c19-4a21-749a-b216-8a7770beb808';

describe('sandbox-scoped tokens (auth-verifier’s access-token format, this service’s key)', () => {
  it('opens exactly the sandbox it was minted for, in its tenant, until the sandbox’s expiry', async () => {
    const tokens = await SandboxTokens.create(3_600_000);
    const token = await tokens.mint('acme', sandboxId, new Date(Date.now() + 60_000));
    await expect(tokens.verify(token)).resolves.toEqual({ tenantId: 'acme', sandboxId });
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: 'palisade-sandbox-orchestrator', aud: audienceOf('sandbox-orchestrator'), sub: `sandbox:${sandboxId}`, tid: 'acme', ptp: 'service' });
    expect(claims.act).toBeUndefined(); // nobody's token: no user, no agent
    expect(await tokens.verify(await tokens.mint('acme', other, new Date(Date.now() + 60_000)))).toEqual({ tenantId: 'acme', sandboxId: other });
  });

  it('refuses an expired token, one of another orchestrator key (e.g. before a restart), an altered one, and a person’s access token', async () => {
    const tokens = await SandboxTokens.create(3_600_000);
    const expired = await tokens.mint('acme', sandboxId, new Date(Date.now() - 60_000), new Date(Date.now() - 120_000));
    await expect(tokens.verify(expired)).rejects.toMatchObject({ code: 'unauthenticated', message: 'access token expired' });
    const before = await (await SandboxTokens.create(3_600_000)).mint('acme', sandboxId, new Date(Date.now() + 60_000));
    await expect(tokens.verify(before)).rejects.toMatchObject({ code: 'unauthenticated' });
    const good = await tokens.mint('acme', sandboxId, new Date(Date.now() + 60_000));
    const [h, p, sig] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: `sandbox:${other}` })).toString('base64url');
    await expect(tokens.verify(`${h}.${forged}.${sig}`)).rejects.toMatchObject({ code: 'unauthenticated' });
    const people = await TestTokenIssuer.create(audienceOf('sandbox-orchestrator'));
    await expect(tokens.verify(await people.token({ sub: 'alice', tid: 'acme', ptp: 'user' }))).rejects.toMatchObject({ code: 'unauthenticated' });
  });

  it('never lives longer than the lifetime limit it was made for', async () => {
    const tokens = await SandboxTokens.create(60_000);
    const now = Date.now();
    const long = await tokens.mint('acme', sandboxId, new Date(now + 3_600_000), new Date(now));
    const { exp, iat } = JSON.parse(Buffer.from(long.split('.')[1], 'base64url').toString()) as { exp: number; iat: number };
    expect(exp - iat).toBeLessThanOrEqual(60);
  });
});
