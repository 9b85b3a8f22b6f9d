import { RevocationList, type AccessTokenClaims } from '@palisade/auth-verifier';
import { buildEvent, systemEventContext } from '@palisade/contracts';
import { TokenIssuer } from '../sessions/token-issuer';
import { revocationOf } from './revocations.projection';

/** The claims a TokenIssuer signs, without the signature. */
const issuer = new TokenIssuer({ sign: async (claims: Record<string, unknown>) => JSON.stringify(claims) }, 300);
const issueAt = async (ms: number, sessionId: string) =>
  JSON.parse((await issuer.issue({ tenantId: 'acme', subject: 'u-1', principalType: 'user', audience: ['palisade:policy'], scopes: [], sessionId }, ms)).accessToken) as AccessTokenClaims;

describe('revocation of a user by a role change, with tokens of the same second (finding 6)', () => {
  const changedAt = new Date('2026-11-02T10:00:00.400Z');
  const event = buildEvent(
    { ...systemEventContext('auth'), now: () => changedAt },
    { type: 'auth.user.sessions-revoked', tenantId: 'acme', actor: { type: 'user', id: 'admin' }, data: { userId: 'u-1', at: changedAt.toISOString() } },
  );

  it('revokes to the millisecond: the sign-in after the change keeps working, the token from before does not', async () => {
    const revocation = revocationOf(event);
    expect(revocation).toEqual({ target: 'subject', subject: 'u-1', at: Math.floor(changedAt.getTime() / 1000), atMs: changedAt.getTime() });
    const list = new RevocationList();
    if (revocation?.target === 'subject') list.revokeSubject('acme', revocation.subject, revocation.atMs);
    const before = await issueAt(changedAt.getTime() - 300, 'old');
    const after = await issueAt(changedAt.getTime() + 300, 'new');
    expect(before.iat).toBe(after.iat); // the same second
    expect(after.iat_ms).toBe(changedAt.getTime() + 300);
    expect(list.reasonRevoked(before)).toBe('principal revoked');
    expect(list.reasonRevoked(after)).toBeUndefined();
  });

  it('revokes a session with every token it had', async () => {
    const signedOut = buildEvent(
      { ...systemEventContext('auth'), now: () => changedAt },
      { type: 'auth.user.signed-out', tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, data: { userId: 'u-1', sessionId: 's-1' } },
    );
    const revocation = revocationOf(signedOut);
    expect(revocation).toMatchObject({ target: 'session', sessionId: 's-1', atMs: changedAt.getTime() });
    const list = new RevocationList();
    if (revocation?.target === 'session') list.revokeSession(revocation.sessionId, revocation.atMs);
    expect(list.reasonRevoked(await issueAt(changedAt.getTime() - 300, 's-1'))).toBe('session revoked');
    expect(list.reasonRevoked(await issueAt(changedAt.getTime() + 300, 's-2'))).toBeUndefined();
  });
});

describe('revocations of agents and team memberships (issue 12)', () => {
  const at = new Date('2026-12-01T10:00:00.250Z');
  const event = (type: string, data: Record<string, unknown>) => buildEvent({ ...systemEventContext('auth'), now: () => at }, { type, tenantId: 'acme', actor: { type: 'user', id: 'alice' }, data });

  it('revokes an agent suspended or retired, to the millisecond (it may be resumed)', () => {
    for (const type of ['auth.agent.suspended', 'auth.agent.retired']) {
      expect(revocationOf(event(type, { agentId: 'bot', cause: 'person' }))).toEqual({ target: 'subject', subject: 'bot', at: Math.floor(at.getTime() / 1000), atMs: at.getTime() });
    }
    expect(revocationOf(event('auth.agent.resumed', { agentId: 'bot' }))).toBeUndefined();
    // A token the stream shows issued after the stop's instant is reached too.
    expect(revocationOf(event('auth.agent.suspended', { agentId: 'bot', cause: 'person', revokedThroughMs: at.getTime() + 40 }))).toMatchObject({ subject: 'bot', atMs: at.getTime() + 40 });
  });

  it('revokes the tokens (not the session) of a user who left a team, so no token lists it', () => {
    expect(revocationOf(event('auth.team-member.removed', { teamId: 'platform', userId: 'u-1', source: 'admin' }))).toMatchObject({ target: 'subject', subject: 'u-1', atMs: at.getTime() });
    expect(revocationOf(event('auth.team-member.added', { teamId: 'platform', userId: 'u-1', source: 'admin' }))).toBeUndefined();
  });
});
