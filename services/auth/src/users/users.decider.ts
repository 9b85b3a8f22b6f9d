import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import { PLATFORM_AUDITOR_ROLE, PLATFORM_ROLES } from '../sessions/token-issuer';
import type { MfaMethod, SessionRevocationReason, SignInMethod, UserEvent } from './users.events';

export interface UserState {
  exists: boolean;
  status: 'active' | 'disabled';
  /** Erased as a data subject: nothing brings the account back. */
  erased: boolean;
  roles: string[];
  /** A second factor is enrolled: sign-in needs it. */
  mfa: boolean;
  passwordExpiresAt: string | null;
  /** Open sessions: id -> expiry (ISO). */
  sessions: Record<string, string>;
}

export type UserCommand =
  | Command<'RegisterUser', { userId: string; username: string; email?: string; roles: string[]; passwordExpiresAt: string | null; identityProvider?: string }>
  /** Roles from the directory or an identity provider at sign-in (platform roles kept). */
  | Command<'SyncRoles', { userId: string; roles: string[] }>
  /** Roles a tenant administrator sets (platform roles kept); a role taken away ends the user's sessions. */
  | Command<'SetRoles', { userId: string; roles: string[] }>
  /** The platform operator grants or withdraws the platform auditor role (withdrawing ends the sessions). */
  | Command<'SetPlatformAuditor', { userId: string; granted: boolean }>
  /** A change by the user themselves ends their other open sessions (`keepSessionId`: the one they changed it from). */
  | Command<'ChangePassword', { userId: string; by: 'self' | 'admin'; problems: string[]; reused: boolean; historySize: number; expiresAt: string | null; keepSessionId?: string }>
  | Command<
      'RecordSignIn',
      {
        userId: string;
        method: SignInMethod;
        sessionId: string;
        sessionExpiresAt: string;
        sourceAddress?: string;
        /** Checked outside (password hash, throttle table). */
        credentialsValid: boolean;
        mfa: boolean;
        /** Set when the second factor was a recovery code (consumed outside): how many are left. */
        recoveryCodesRemaining?: number;
        /** Set when this failure locked the account or the address. */
        lockout?: { scope: 'account' | 'address'; failures: number; until: string };
      }
    >
  | Command<'RecordMfaFailure', { userId: string; method: SignInMethod; sourceAddress?: string; lockout?: { scope: 'account' | 'address'; failures: number; until: string } }>
  | Command<'EnrolMfa', { userId: string; method: MfaMethod; recoveryCodes: number }>
  | Command<'ResetMfa', { userId: string }>
  | Command<'SignOut', { userId: string; sessionId: string }>
  | Command<'RevokeSession', { userId: string; sessionId: string; reason: SessionRevocationReason }>
  | Command<'RevokeAllSessions', { userId: string }>
  | Command<'DisableUser', { userId: string }>
  /** The audit service erased the user as a data subject (`erasure`: its event id): sessions end, the account is disabled for good and its name forgotten. */
  | Command<'EraseUser', { userId: string; erasure: string }>;

const notFound = () => new PalisadeError('not_found', 'user not found');

/** `requested` without platform roles, plus the platform roles the user holds. */
function keepingPlatformRoles(current: readonly string[], requested: readonly string[]): string[] {
  return [...new Set([...requested.filter((r) => !PLATFORM_ROLES.includes(r)), ...current.filter((r) => PLATFORM_ROLES.includes(r))])];
}

const sameRoles = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((r) => b.includes(r));

/** The change, and when a role is taken away the end of every session (tokens with its scopes die at once). */
function rolesChanged(state: UserState, userId: string, roles: string[], now: Date): UserEvent[] {
  if (sameRoles(roles, state.roles)) return [];
  const events: UserEvent[] = [{ type: 'auth.user.roles-changed', data: { userId, roles } }];
  if (state.roles.some((r) => !roles.includes(r))) events.push({ type: 'auth.user.sessions-revoked', data: { userId, at: now.toISOString() } });
  return events;
}

function personal(userId: string, sourceAddress?: string) {
  return sourceAddress ? { personal: { subjectId: userId, data: { sourceAddress } } } : {};
}

function openSessions(state: UserState, now: Date): string[] {
  return Object.entries(state.sessions)
    .filter(([, expiresAt]) => Date.parse(expiresAt) > now.getTime())
    .map(([id]) => id);
}

/**
 * A sign-in refused while the account or the address is locked: no credential was
 * checked and the account does not change, so it is not a command on the user's stream
 * (the lockout records it on a stream of its own, see SignInService.reserveAttempt).
 */
export function throttledSignIn(userId: string, method: SignInMethod, sourceAddress?: string): UserEvent {
  return { type: 'auth.user.sign-in-failed', data: { userId, method, reason: 'throttled' }, ...personal(userId, sourceAddress) };
}

export const userDecider: Decider<UserState, UserCommand, UserEvent> = {
  initialState: () => ({ exists: false, erased: false, status: 'active', roles: [], mfa: false, passwordExpiresAt: null, sessions: {} }),

  decide(command, state) {
    const { data } = command;
    if (command.type === 'RegisterUser') {
      if (state.exists) throw new PalisadeError('conflict', 'user already exists');
      const contact: Record<string, string> = { username: command.data.username };
      if (command.data.email) contact.email = command.data.email;
      // A directory or IdP account: no local password, roles from the provider.
      if (command.data.identityProvider) {
        return [{ type: 'auth.user.registered', data: { userId: data.userId, roles: command.data.roles, identityProvider: command.data.identityProvider }, personal: { subjectId: data.userId, data: contact } }];
      }
      return [
        { type: 'auth.user.registered', data: { userId: data.userId, roles: command.data.roles }, personal: { subjectId: data.userId, data: contact } },
        { type: 'auth.user.password-changed', data: { userId: data.userId, by: 'admin', expiresAt: command.data.passwordExpiresAt } },
      ];
    }
    if (!state.exists) throw notFound();
    // An erased user is gone: nothing may act on the account again.
    if (state.erased && command.type !== 'EraseUser') throw notFound();
    switch (command.type) {
      case 'ChangePassword':
        if (command.data.problems.length > 0) {
          throw new PalisadeError('validation', `password: ${command.data.problems.join('; ')}`);
        }
        if (command.data.reused) {
          throw new PalisadeError('validation', `password: must differ from the last ${command.data.historySize} passwords`);
        }
        return [
          { type: 'auth.user.password-changed', data: { userId: data.userId, by: command.data.by, expiresAt: command.data.expiresAt } },
          ...(command.data.by === 'self' ? openSessions(state, command.metadata.now).filter((id) => id !== command.data.keepSessionId) : []).map(
            (sessionId): UserEvent => ({ type: 'auth.user.session-revoked', data: { userId: data.userId, sessionId, reason: 'password_changed' } }),
          ),
        ];
      case 'RecordSignIn': {
        const c = command.data;
        const failed = (reason: 'bad_credentials' | 'disabled' | 'password_expired' | 'mfa_failed'): UserEvent[] => {
          const events: UserEvent[] = [{ type: 'auth.user.sign-in-failed', data: { userId: c.userId, method: c.method, reason }, ...personal(c.userId, c.sourceAddress) }];
          if (c.lockout) events.push({ type: 'auth.user.locked-out', data: { userId: c.userId, ...c.lockout }, ...personal(c.userId, c.sourceAddress) });
          return events;
        };
        if (!c.credentialsValid) return failed('bad_credentials');
        if (state.status === 'disabled') return failed('disabled');
        if (state.passwordExpiresAt && c.method === 'password' && Date.parse(state.passwordExpiresAt) <= command.metadata.now.getTime()) {
          return failed('password_expired');
        }
        // Local and directory sign-ins of an enrolled user need the second factor (OIDC / SAML: the IdP's).
        if (state.mfa && !c.mfa && (c.method === 'password' || c.method === 'ldap')) {
          throw new PalisadeError('forbidden', 'a second factor is required');
        }
        const used: UserEvent[] =
          c.recoveryCodesRemaining === undefined ? [] : [{ type: 'auth.user.recovery-code-used', data: { userId: c.userId, remaining: c.recoveryCodesRemaining } }];
        return [
          ...used,
          {
            type: 'auth.user.signed-in',
            data: { userId: c.userId, sessionId: c.sessionId, method: c.method, mfa: c.mfa, sessionExpiresAt: c.sessionExpiresAt },
            ...personal(c.userId, c.sourceAddress),
          },
        ];
      }
      case 'RecordMfaFailure': {
        const c = command.data;
        const events: UserEvent[] = [{ type: 'auth.user.sign-in-failed', data: { userId: c.userId, method: c.method, reason: 'mfa_failed' }, ...personal(c.userId, c.sourceAddress) }];
        if (c.lockout) events.push({ type: 'auth.user.locked-out', data: { userId: c.userId, ...c.lockout }, ...personal(c.userId, c.sourceAddress) });
        return events;
      }
      case 'SyncRoles': {
        const roles = keepingPlatformRoles(state.roles, command.data.roles);
        return sameRoles(roles, state.roles) ? [] : [{ type: 'auth.user.roles-changed', data: { userId: command.data.userId, roles } }];
      }
      case 'SetRoles':
        return rolesChanged(state, command.data.userId, keepingPlatformRoles(state.roles, command.data.roles), command.metadata.now);
      case 'SetPlatformAuditor': {
        const others = state.roles.filter((r) => r !== PLATFORM_AUDITOR_ROLE);
        return rolesChanged(state, command.data.userId, command.data.granted ? [...others, PLATFORM_AUDITOR_ROLE] : others, command.metadata.now);
      }
      case 'EnrolMfa':
        if (state.status === 'disabled') throw new PalisadeError('forbidden', 'user is disabled');
        if (state.mfa) throw new PalisadeError('conflict', 'a second factor is already enrolled: reset it first');
        return [{ type: 'auth.user.mfa-enrolled', data: command.data }];
      case 'ResetMfa':
        if (!state.mfa) throw new PalisadeError('not_found', 'no second factor is enrolled');
        return [{ type: 'auth.user.mfa-reset', data: command.data }];
      case 'SignOut':
        if (!openSessions(state, command.metadata.now).includes(command.data.sessionId)) return [];
        return [{ type: 'auth.user.signed-out', data: command.data }];
      case 'RevokeSession':
        if (!(command.data.sessionId in state.sessions)) throw new PalisadeError('not_found', 'session not found');
        return [{ type: 'auth.user.session-revoked', data: command.data }];
      case 'RevokeAllSessions':
        return [{ type: 'auth.user.sessions-revoked', data: { userId: data.userId, at: command.metadata.now.toISOString() } }];
      case 'DisableUser':
        if (state.status === 'disabled') return [];
        return [{ type: 'auth.user.disabled', data: { userId: data.userId } }];
      case 'EraseUser': {
        if (state.erased) return [];
        const events: UserEvent[] = [{ type: 'auth.user.sessions-revoked', data: { userId: data.userId, at: command.metadata.now.toISOString() } }];
        if (state.status !== 'disabled') events.push({ type: 'auth.user.disabled', data: { userId: data.userId } });
        events.push({ type: 'auth.user.erased', data: { userId: data.userId, erasure: command.data.erasure } });
        return events;
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'auth.user.registered':
        return { ...state, exists: true, roles: event.data.roles };
      case 'auth.user.password-changed':
        return { ...state, passwordExpiresAt: event.data.expiresAt };
      case 'auth.user.signed-in':
        return { ...state, sessions: { ...state.sessions, [event.data.sessionId]: event.data.sessionExpiresAt } };
      case 'auth.user.signed-out':
      case 'auth.user.session-revoked': {
        const sessions = { ...state.sessions };
        delete sessions[event.data.sessionId];
        return { ...state, sessions };
      }
      case 'auth.user.sessions-revoked':
        return { ...state, sessions: {} };
      case 'auth.user.disabled':
        return { ...state, status: 'disabled', sessions: {} };
      case 'auth.user.erased':
        return { ...state, erased: true, status: 'disabled', sessions: {} };
      case 'auth.user.mfa-enrolled':
        return { ...state, mfa: true };
      case 'auth.user.roles-changed':
        return { ...state, roles: event.data.roles };
      case 'auth.user.mfa-reset':
        return { ...state, mfa: false };
      default:
        return state;
    }
  },
};
