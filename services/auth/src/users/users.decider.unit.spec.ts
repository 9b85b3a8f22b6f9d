import { DeciderSpecification } from '@palisade/eventsourcing';
import { throttledSignIn, userDecider, type UserCommand } from './users.decider';
import type { UserEvent } from './users.events';

const given = DeciderSpecification.for(userDecider);
const now = new Date('2026-01-01T00:00:00.000Z');
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'admin' }, now };
const cmd = <T extends UserCommand['type']>(type: T, data: Extract<UserCommand, { type: T }>['data']) => ({ type, data, metadata }) as UserCommand;

const registered: UserEvent[] = [
  { type: 'auth.user.registered', data: { userId: 'u-1', roles: ['admin'] }, personal: { subjectId: 'u-1', data: { username: 'ann', email: 'ann@acme.example' } } },
  { type: 'auth.user.password-changed', data: { userId: 'u-1', by: 'admin', expiresAt: null } },
];
const signIn = { userId: 'u-1', method: 'password' as const, sessionId: 's-1', sessionExpiresAt: '2026-01-02T00:00:00.000Z', sourceAddress: '10.0.0.9', credentialsValid: true, mfa: false };
const signedIn: UserEvent = {
  type: 'auth.user.signed-in',
  data: { userId: 'u-1', sessionId: 's-1', method: 'password', mfa: false, sessionExpiresAt: '2026-01-02T00:00:00.000Z' },
  personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.9' } },
};

describe('user decider', () => {
  it('registers a user with personal data only in `personal`', () => {
    given([]).when(cmd('RegisterUser', { userId: 'u-1', username: 'ann', email: 'ann@acme.example', roles: ['admin'], passwordExpiresAt: null })).then(registered);
    given(registered).when(cmd('RegisterUser', { userId: 'u-1', username: 'ann', roles: [], passwordExpiresAt: null })).thenThrows('conflict');
  });

  it('sets tenant roles, keeping platform roles no tenant administrator may give or take; a role taken away ends every session', () => {
    const operator: UserEvent[] = [{ ...registered[0], data: { userId: 'u-1', roles: ['admin', 'platform-admin'] } } as UserEvent];
    given(operator).when(cmd('SetRoles', { userId: 'u-1', roles: ['admin', 'auditor'] })).then([{ type: 'auth.user.roles-changed', data: { userId: 'u-1', roles: ['admin', 'auditor', 'platform-admin'] } }]);
    // Asking for a platform role, or to drop one, changes nothing of the platform roles.
    given(operator).when(cmd('SetRoles', { userId: 'u-1', roles: ['admin', 'platform-auditor'] })).then([]);
    given(operator)
      .when(cmd('SetRoles', { userId: 'u-1', roles: ['member'] }))
      .then([
        { type: 'auth.user.roles-changed', data: { userId: 'u-1', roles: ['member', 'platform-admin'] } },
        { type: 'auth.user.sessions-revoked', data: { userId: 'u-1', at: now.toISOString() } },
      ]);
    given([]).when(cmd('SetRoles', { userId: 'u-1', roles: ['member'] })).thenThrows('not_found');
  });

  it('keeps platform roles when the directory or an identity provider syncs roles at sign-in', () => {
    const auditor: UserEvent[] = [{ ...registered[0], data: { userId: 'u-1', roles: ['member', 'platform-auditor'] } } as UserEvent];
    given(auditor).when(cmd('SyncRoles', { userId: 'u-1', roles: ['admin'] })).then([{ type: 'auth.user.roles-changed', data: { userId: 'u-1', roles: ['admin', 'platform-auditor'] } }]);
    given(auditor).when(cmd('SyncRoles', { userId: 'u-1', roles: ['member', 'platform-admin'] })).then([]);
  });

  it('grants and withdraws the platform auditor role; withdrawing ends every session', () => {
    given(registered).when(cmd('SetPlatformAuditor', { userId: 'u-1', granted: true })).then([{ type: 'auth.user.roles-changed', data: { userId: 'u-1', roles: ['admin', 'platform-auditor'] } }]);
    const granted: UserEvent[] = [...registered, { type: 'auth.user.roles-changed', data: { userId: 'u-1', roles: ['admin', 'platform-auditor'] } }];
    given(granted).when(cmd('SetPlatformAuditor', { userId: 'u-1', granted: true })).then([]);
    given(granted)
      .when(cmd('SetPlatformAuditor', { userId: 'u-1', granted: false }))
      .then([
        { type: 'auth.user.roles-changed', data: { userId: 'u-1', roles: ['admin'] } },
        { type: 'auth.user.sessions-revoked', data: { userId: 'u-1', at: now.toISOString() } },
      ]);
  });

  it('erases a user for good when its data subject is erased: sessions end, the account is disabled, and nothing acts on it again', () => {
    const erased: UserEvent[] = [
      { type: 'auth.user.sessions-revoked', data: { userId: 'u-1', at: now.toISOString() } },
      { type: 'auth.user.disabled', data: { userId: 'u-1' } },
      { type: 'auth.user.erased', data: { userId: 'u-1', erasure: 'e-1' } },
    ];
    given([...registered, signedIn]).when(cmd('EraseUser', { userId: 'u-1', erasure: 'e-1' })).then(erased);
    // already disabled: not disabled twice
    given([...registered, { type: 'auth.user.disabled', data: { userId: 'u-1' } }]).when(cmd('EraseUser', { userId: 'u-1', erasure: 'e-1' })).then([erased[0], erased[2]]);
    // a redelivery changes nothing; after it the account is gone for every command
    given([...registered, ...erased]).when(cmd('EraseUser', { userId: 'u-1', erasure: 'e-1' })).then([]);
    given([...registered, ...erased]).when(cmd('SetRoles', { userId: 'u-1', roles: ['admin'] })).thenThrows('not_found');
    given([...registered, ...erased]).when(cmd('RecordSignIn', signIn)).thenThrows('not_found');
    given([]).when(cmd('EraseUser', { userId: 'u-1', erasure: 'e-1' })).thenThrows('not_found');
  });

  it('signs in with valid credentials and opens a session', () => {
    given(registered).when(cmd('RecordSignIn', signIn)).then([signedIn]);
  });

  it('records a failure with its reason class, and the lockout it caused', () => {
    const lockout = { scope: 'account' as const, failures: 5, until: '2026-01-01T00:00:01.000Z' };
    given(registered)
      .when(cmd('RecordSignIn', { ...signIn, credentialsValid: false, lockout }))
      .then([
        { type: 'auth.user.sign-in-failed', data: { userId: 'u-1', method: 'password', reason: 'bad_credentials' }, personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.9' } } },
        { type: 'auth.user.locked-out', data: { userId: 'u-1', ...lockout }, personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.9' } } },
      ]);
  });

  it('refuses a disabled user and an expired password even with the right password', () => {
    given([...registered, { type: 'auth.user.disabled', data: { userId: 'u-1' } }])
      .when(cmd('RecordSignIn', signIn))
      .then([{ type: 'auth.user.sign-in-failed', data: { userId: 'u-1', method: 'password', reason: 'disabled' }, personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.9' } } }]);
    given([...registered, { type: 'auth.user.password-changed', data: { userId: 'u-1', by: 'self', expiresAt: '2025-12-31T00:00:00.000Z' } }])
      .when(cmd('RecordSignIn', signIn))
      .then([{ type: 'auth.user.sign-in-failed', data: { userId: 'u-1', method: 'password', reason: 'password_expired' }, personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.9' } } }]);
  });

  it('refuses a new password that breaks the policy or repeats a recent one', () => {
    given(registered).when(cmd('ChangePassword', { userId: 'u-1', by: 'self', problems: ['must be at least 12 characters'], reused: false, historySize: 5, expiresAt: null })).thenThrows('validation', 'at least 12');
    given(registered).when(cmd('ChangePassword', { userId: 'u-1', by: 'self', problems: [], reused: true, historySize: 5, expiresAt: null })).thenThrows('validation', 'last 5 passwords');
  });

  it('ends the other open sessions when users change their own password, and keeps the one they changed it from', () => {
    const second: UserEvent = { ...signedIn, data: { ...signedIn.data, sessionId: 's-2' } } as UserEvent;
    const expired: UserEvent = { ...signedIn, data: { ...signedIn.data, sessionId: 's-0', sessionExpiresAt: '2025-12-31T00:00:00.000Z' } } as UserEvent;
    const change = { userId: 'u-1', by: 'self' as const, problems: [], reused: false, historySize: 5, expiresAt: null };
    const changed: UserEvent = { type: 'auth.user.password-changed', data: { userId: 'u-1', by: 'self', expiresAt: null } };
    given([...registered, expired, signedIn, second])
      .when(cmd('ChangePassword', { ...change, keepSessionId: 's-2' }))
      .then([changed, { type: 'auth.user.session-revoked', data: { userId: 'u-1', sessionId: 's-1', reason: 'password_changed' } }]);
    // Without a session of its own (an API key's token), every open session ends.
    given([...registered, signedIn, second])
      .when(cmd('ChangePassword', change))
      .then([
        changed,
        { type: 'auth.user.session-revoked', data: { userId: 'u-1', sessionId: 's-1', reason: 'password_changed' } },
        { type: 'auth.user.session-revoked', data: { userId: 'u-1', sessionId: 's-2', reason: 'password_changed' } },
      ]);
  });

  it('records a refusal while locked out as a throttled failure, source address only in `personal`', () => {
    expect(throttledSignIn('u-1', 'ldap', '10.0.0.9')).toEqual({
      type: 'auth.user.sign-in-failed',
      data: { userId: 'u-1', method: 'ldap', reason: 'throttled' },
      personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.9' } },
    });
  });

  it('signs out an open session once, and revokes sessions it knows', () => {
    given([...registered, signedIn]).when(cmd('SignOut', { userId: 'u-1', sessionId: 's-1' })).then([{ type: 'auth.user.signed-out', data: { userId: 'u-1', sessionId: 's-1' } }]);
    given([...registered, signedIn, { type: 'auth.user.signed-out', data: { userId: 'u-1', sessionId: 's-1' } }]).when(cmd('SignOut', { userId: 'u-1', sessionId: 's-1' })).then([]);
    given([...registered, signedIn])
      .when(cmd('RevokeSession', { userId: 'u-1', sessionId: 's-1', reason: 'refresh_token_reuse' }))
      .then([{ type: 'auth.user.session-revoked', data: { userId: 'u-1', sessionId: 's-1', reason: 'refresh_token_reuse' } }]);
    given(registered).when(cmd('RevokeSession', { userId: 'u-1', sessionId: 's-9', reason: 'admin' })).thenThrows('not_found');
  });

  it('refuses commands for a user that does not exist', () => {
    given([]).when(cmd('RecordSignIn', signIn)).thenThrows('not_found');
  });
});
