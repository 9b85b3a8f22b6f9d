import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { ApiKeyEvent, ApiKeyOwner, ApiKeyRevocationReason } from './api-keys.events';

export interface ApiKeyState {
  exists: boolean;
  revoked: boolean;
  owner?: ApiKeyOwner;
  expiresAt?: string;
}

/** Longest lifetime of a key, and of the overlap in which the previous secret still works after a rotation. */
export const MAX_API_KEY_DAYS = 365;
export const MAX_OVERLAP_SEC = 7 * 86400;

export type ApiKeyCommand =
  | Command<'CreateApiKey', { keyId: string; owner: ApiKeyOwner; name: string; scopes: string[]; expiresAt: string; grantable: readonly string[] }>
  | Command<'RotateApiKey', { keyId: string; overlapSec: number }>
  | Command<'RevokeApiKey', { keyId: string; reason: ApiKeyRevocationReason }>;

const notFound = () => new PalisadeError('not_found', 'API key not found');

export const apiKeyDecider: Decider<ApiKeyState, ApiKeyCommand, ApiKeyEvent> = {
  initialState: () => ({ exists: false, revoked: false }),

  decide(command, state) {
    const now = command.metadata.now.getTime();
    switch (command.type) {
      case 'CreateApiKey': {
        const d = command.data;
        if (state.exists) throw new PalisadeError('conflict', 'API key already exists');
        // Least privilege: never more than whoever it is made for (or by) holds.
        const excess = d.scopes.filter((s) => !d.grantable.includes(s));
        if (excess.length > 0) throw new PalisadeError('forbidden', `scopes: ${excess.join(', ')} exceed(s) the owner's own scopes`);
        const expires = Date.parse(d.expiresAt);
        if (!(expires > now) || expires > now + MAX_API_KEY_DAYS * 86400_000) throw new PalisadeError('validation', `expiresAt: must be in the future, at most ${MAX_API_KEY_DAYS} days ahead`);
        return [{ type: 'auth.api-key.created', data: { keyId: d.keyId, owner: d.owner, name: d.name, scopes: [...new Set(d.scopes)], expiresAt: d.expiresAt } }];
      }
      case 'RotateApiKey': {
        if (!state.exists) throw notFound();
        if (state.revoked) throw new PalisadeError('conflict', 'API key is revoked');
        if (Date.parse(state.expiresAt!) <= now) throw new PalisadeError('conflict', 'API key has expired');
        if (command.data.overlapSec < 0 || command.data.overlapSec > MAX_OVERLAP_SEC) throw new PalisadeError('validation', `overlapSec: must be 0..${MAX_OVERLAP_SEC}`);
        const until = Math.min(now + command.data.overlapSec * 1000, Date.parse(state.expiresAt!));
        return [{ type: 'auth.api-key.rotated', data: { keyId: command.data.keyId, previousSecretValidUntil: new Date(until).toISOString() } }];
      }
      case 'RevokeApiKey':
        if (!state.exists) throw notFound();
        if (state.revoked) return [];
        return [{ type: 'auth.api-key.revoked', data: command.data }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'auth.api-key.created':
        return { exists: true, revoked: false, owner: event.data.owner, expiresAt: event.data.expiresAt };
      case 'auth.api-key.revoked':
        return { ...state, revoked: true };
      default:
        return state;
    }
  },
};
