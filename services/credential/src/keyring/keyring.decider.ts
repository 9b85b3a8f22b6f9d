import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { CipherName } from '../crypto/envelope';
import type { KeyProviderName } from '../keys/key-provider';
import type { KeyOrigin, KeyringEvent } from './keyring.events';

export interface KeyVersion {
  version: number;
  provider: KeyProviderName;
  origin: KeyOrigin;
  keyRef: string;
  state: 'active' | 'retiring' | 'retired' | 'revoked';
}

export interface KeyringState {
  exists: boolean;
  cipher: CipherName;
  currentVersion: number;
  keys: KeyVersion[];
}

export type KeyringCommand =
  | Command<'provision', { provider: KeyProviderName; cipher: CipherName; origin: KeyOrigin; keyRef: string }>
  | Command<'rotate', { provider: KeyProviderName; origin: KeyOrigin; keyRef: string; reason: string }>
  | Command<'retire', { keyVersion: number; destroyed: boolean; rewrapped: number }>
  | Command<'revoke', { keyVersion: number; destroyed: boolean; reason: string }>
  | Command<'set-cipher', { cipher: CipherName }>;

export const keyringDecider: Decider<KeyringState, KeyringCommand, KeyringEvent> = {
  initialState: () => ({ exists: false, cipher: 'aes-256-gcm', currentVersion: 0, keys: [] }),

  decide(command, state) {
    if (command.type === 'provision') {
      if (state.exists) throw new PalisadeError('conflict', 'the tenant already has a key ring');
      return [{ type: 'credential.keyring.provisioned', data: { ...command.data, keyVersion: 1 } }];
    }
    if (!state.exists) throw new PalisadeError('not_found', 'key ring not found');
    const current = state.keys.find((k) => k.version === state.currentVersion)!;
    switch (command.type) {
      case 'rotate':
        return [
          {
            type: 'credential.keyring.rotated',
            data: { ...command.data, fromVersion: state.currentVersion, keyVersion: state.currentVersion + 1 },
          },
        ];
      case 'retire': {
        const key = state.keys.find((k) => k.version === command.data.keyVersion);
        if (!key || key.state !== 'retiring') throw new PalisadeError('illegal_state', `key version ${command.data.keyVersion} is not being retired`);
        return [{ type: 'credential.keyring.key_retired', data: command.data }];
      }
      case 'revoke': {
        const key = state.keys.find((k) => k.version === command.data.keyVersion);
        if (!key) throw new PalisadeError('not_found', `key version ${command.data.keyVersion} not found`);
        if (key.state === 'revoked' || key.state === 'retired') throw new PalisadeError('illegal_state', `key version ${key.version} is already ${key.state}`);
        return [{ type: 'credential.keyring.key_revoked', data: { ...command.data, origin: key.origin } }];
      }
      case 'set-cipher':
        if (command.data.cipher === state.cipher) return [];
        if (current.state === 'revoked') throw new PalisadeError('illegal_state', 'the current key is revoked: rotate it first');
        return [{ type: 'credential.keyring.cipher_changed', data: command.data }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'credential.keyring.provisioned':
        return {
          exists: true,
          cipher: event.data.cipher,
          currentVersion: 1,
          keys: [{ version: 1, provider: event.data.provider, origin: event.data.origin, keyRef: event.data.keyRef, state: 'active' }],
        };
      case 'credential.keyring.rotated':
        return {
          ...state,
          currentVersion: event.data.keyVersion,
          keys: [
            ...state.keys.map((k): KeyVersion => (k.state === 'active' ? { ...k, state: 'retiring' } : k)),
            { version: event.data.keyVersion, provider: event.data.provider, origin: event.data.origin, keyRef: event.data.keyRef, state: 'active' },
          ],
        };
      case 'credential.keyring.key_retired':
        return { ...state, keys: state.keys.map((k): KeyVersion => (k.version === event.data.keyVersion ? { ...k, state: 'retired' } : k)) };
      case 'credential.keyring.key_revoked':
        return { ...state, keys: state.keys.map((k): KeyVersion => (k.version === event.data.keyVersion ? { ...k, state: 'revoked' } : k)) };
      case 'credential.keyring.cipher_changed':
        return { ...state, cipher: event.data.cipher };
    }
  },
};
