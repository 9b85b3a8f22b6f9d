import { DeciderSpecification } from '@palisade/eventsourcing';
import { userDecider, type UserCommand } from '../users/users.decider';
import type { UserEvent } from '../users/users.events';
import { newRecoveryCodes, newTotpSecret, RecoveryCodeHasher, RECOVERY_CODE, totpCode, totpStep, enrolmentOf } from './totp';

const given = DeciderSpecification.for(userDecider);
const now = new Date('2026-01-01T00:00:00.000Z');
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'u-1' }, now };
const cmd = <T extends UserCommand['type']>(type: T, data: Extract<UserCommand, { type: T }>['data']) => ({ type, data, metadata }) as UserCommand;
const registered: UserEvent[] = [
  { type: 'auth.user.registered', data: { userId: 'u-1', roles: ['member'] }, personal: { subjectId: 'u-1', data: { username: 'ann' } } },
  { type: 'auth.user.password-changed', data: { userId: 'u-1', by: 'admin', expiresAt: null } },
];
const enrolled: UserEvent = { type: 'auth.user.mfa-enrolled', data: { userId: 'u-1', method: 'totp', recoveryCodes: 10 } };
const signIn = { userId: 'u-1', method: 'password' as const, sessionId: 's-1', sessionExpiresAt: '2026-01-02T00:00:00.000Z', credentialsValid: true, mfa: false };

describe('second factor (user decider)', () => {
  it('enrols once; a reset allows a new enrolment', () => {
    given(registered).when(cmd('EnrolMfa', { userId: 'u-1', method: 'totp', recoveryCodes: 10 })).then([enrolled]);
    given([...registered, enrolled]).when(cmd('EnrolMfa', { userId: 'u-1', method: 'totp', recoveryCodes: 10 })).thenThrows('conflict');
    given([...registered, enrolled]).when(cmd('ResetMfa', { userId: 'u-1' })).then([{ type: 'auth.user.mfa-reset', data: { userId: 'u-1' } }]);
    given(registered).when(cmd('ResetMfa', { userId: 'u-1' })).thenThrows('not_found');
    given([...registered, enrolled, { type: 'auth.user.mfa-reset', data: { userId: 'u-1' } }]).when(cmd('EnrolMfa', { userId: 'u-1', method: 'totp', recoveryCodes: 10 })).then([enrolled]);
  });

  it('never opens a password session of an enrolled user without the second factor', () => {
    given([...registered, enrolled]).when(cmd('RecordSignIn', signIn)).thenThrows('forbidden', 'second factor');
    given([...registered, enrolled])
      .when(cmd('RecordSignIn', { ...signIn, mfa: true, recoveryCodesRemaining: 9 }))
      .then([
        { type: 'auth.user.recovery-code-used', data: { userId: 'u-1', remaining: 9 } },
        { type: 'auth.user.signed-in', data: { userId: 'u-1', sessionId: 's-1', method: 'password', mfa: true, sessionExpiresAt: '2026-01-02T00:00:00.000Z' } },
      ]);
  });

  it('records a wrong code as an mfa_failed sign-in failure, with the lockout it caused', () => {
    const lockout = { scope: 'account' as const, failures: 5, until: '2026-01-01T00:00:30.000Z' };
    given([...registered, enrolled])
      .when(cmd('RecordMfaFailure', { userId: 'u-1', method: 'password', sourceAddress: '10.0.0.1', lockout }))
      .then([
        { type: 'auth.user.sign-in-failed', data: { userId: 'u-1', method: 'password', reason: 'mfa_failed' }, personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.1' } } },
        { type: 'auth.user.locked-out', data: { userId: 'u-1', ...lockout }, personal: { subjectId: 'u-1', data: { sourceAddress: '10.0.0.1' } } },
      ]);
  });
});

describe('TOTP and recovery codes', () => {
  it('accepts the code of now and of one step either side, and names its step', () => {
    const secret = newTotpSecret();
    const step = Math.floor(now.getTime() / 30_000);
    expect(totpStep(secret, totpCode(secret, now), now)).toBe(step);
    expect(totpStep(secret, totpCode(secret, new Date(now.getTime() - 30_000)), now)).toBe(step - 1);
    expect(totpStep(secret, totpCode(secret, new Date(now.getTime() + 90_000)), now)).toBeUndefined();
    expect(totpStep(newTotpSecret(), totpCode(secret, now), now)).toBeUndefined(); // another secret's code (a 3-in-a-million collision aside)
  });

  it('matches the RFC 6238 SHA-1 test vector', () => {
    // RFC 6238 appendix B: secret "12345678901234567890", T = 59 s → 94287082 (8 digits); 6 digits: 287082.
    expect(totpCode(Buffer.from('12345678901234567890'), new Date(59_000))).toBe('287082');
  });

  it('gives an otpauth URI an authenticator can read', () => {
    const e = enrolmentOf(Buffer.from('12345678901234567890'), 'ann', 'Palisade (acme)');
    expect(e.secret).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    expect(e.otpauthUri).toMatch(/^otpauth:\/\/totp\/.*secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ/);
  });

  it('makes ten distinct 80-bit recovery codes, stored as keyed digests matched in constant time', () => {
    const codes = newRecoveryCodes();
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(RECOVERY_CODE);
    const hasher = new RecoveryCodeHasher(Buffer.alloc(32, 7));
    const stored = codes.map((c) => hasher.hash('acme', 'u-1', c));
    expect(hasher.match(hasher.hash('acme', 'u-1', codes[3].toUpperCase().replace(/-/g, '')), stored)).toEqual(stored[3]);
    expect(hasher.match(hasher.hash('acme', 'u-2', codes[3]), stored)).toBeUndefined();
    expect(new RecoveryCodeHasher(Buffer.alloc(32, 8)).hash('acme', 'u-1', codes[0]).equals(stored[0])).toBe(false);
  });
});
