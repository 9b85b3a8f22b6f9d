import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { CipherName } from '../crypto/envelope';
import type { StorageBackend } from '../storage/ciphertext-store';
import type { SecretEvent } from './secrets.events';

export type SecretStatus = 'none' | 'active' | 'revoked' | 'shredded';

export interface VersionState {
  version: number;
  state: 'current' | 'overlap' | 'retired';
  retiresAt?: string;
}

export interface SecretState {
  status: SecretStatus;
  secretId?: string;
  name?: string;
  scopes: string[];
  currentVersion: number;
  versions: VersionState[];
  rotationDays: number;
  overlapSeconds: number;
  nextRotationAt?: string;
  /** The due date the last due / overdue notice was about. */
  dueNoticeFor?: string;
  overdueNoticeFor?: string;
}

const DAY_MS = 86_400_000;

export type SecretCommand =
  | Command<
      'create',
      {
        secretId: string;
        name: string;
        scopes: string[];
        cipher: CipherName;
        storage: StorageBackend;
        keyVersion: number;
        rotationDays: number;
        overlapSeconds: number;
      }
    >
  | Command<'rotate', { version: number; rotator: string; keyVersion: number }>
  | Command<'retire-version', { version: number }>
  | Command<'revoke', { reason: string }>
  | Command<'shred', { reason: string }>
  | Command<'check-rotation', { overdueAfterDays: number }>;

const iso = (ms: number) => new Date(ms).toISOString();

export const secretDecider: Decider<SecretState, SecretCommand, SecretEvent> = {
  initialState: () => ({ status: 'none', scopes: [], currentVersion: 0, versions: [], rotationDays: 90, overlapSeconds: 0 }),

  decide(command, state) {
    const now = command.metadata.now.getTime();
    if (command.type === 'create') {
      if (state.status !== 'none') throw new PalisadeError('conflict', 'secret already exists');
      const d = command.data;
      return [
        {
          type: 'credential.secret.created',
          data: {
            secretId: d.secretId,
            name: d.name,
            scopes: d.scopes,
            version: 1,
            cipher: d.cipher,
            storage: d.storage,
            keyVersion: d.keyVersion,
            rotationDays: d.rotationDays,
            overlapSeconds: d.overlapSeconds,
            nextRotationAt: iso(now + d.rotationDays * DAY_MS),
          },
        },
      ];
    }
    if (state.status === 'none' || state.status === 'shredded') throw new PalisadeError('not_found', 'secret not found');
    switch (command.type) {
      case 'rotate': {
        if (state.status !== 'active') throw new PalisadeError('illegal_state', 'a revoked secret cannot be rotated');
        if (command.data.version !== state.currentVersion + 1) {
          throw new PalisadeError('conflict', `the next version is ${state.currentVersion + 1}`);
        }
        return [
          {
            type: 'credential.secret.rotated',
            data: {
              secretId: state.secretId!,
              version: command.data.version,
              previousVersion: state.currentVersion,
              previousRetiresAt: iso(now + state.overlapSeconds * 1000),
              rotator: command.data.rotator,
              keyVersion: command.data.keyVersion,
              nextRotationAt: iso(now + state.rotationDays * DAY_MS),
            },
          },
        ];
      }
      case 'retire-version': {
        const v = state.versions.find((x) => x.version === command.data.version);
        if (!v || v.state !== 'overlap') throw new PalisadeError('illegal_state', `version ${command.data.version} is not in its overlap window`);
        if (v.retiresAt && Date.parse(v.retiresAt) > now) throw new PalisadeError('illegal_state', `version ${v.version} retires at ${v.retiresAt}`);
        return [{ type: 'credential.secret.version_retired', data: { secretId: state.secretId!, version: v.version } }];
      }
      case 'revoke': {
        if (state.status === 'revoked') throw new PalisadeError('illegal_state', 'secret is already revoked');
        return [
          {
            type: 'credential.secret.revoked',
            data: {
              secretId: state.secretId!,
              scopesAffected: state.scopes,
              versionsAffected: state.versions.filter((v) => v.state !== 'retired').map((v) => v.version),
              reason: command.data.reason,
            },
          },
        ];
      }
      case 'shred':
        return [
          {
            type: 'credential.secret.shredded',
            data: { secretId: state.secretId!, versionsDestroyed: state.versions.filter((v) => v.state !== 'retired').map((v) => v.version), reason: command.data.reason },
          },
        ];
      case 'check-rotation': {
        if (state.status !== 'active' || !state.nextRotationAt) return [];
        const due = Date.parse(state.nextRotationAt);
        if (now >= due + command.data.overdueAfterDays * DAY_MS && state.overdueNoticeFor !== state.nextRotationAt) {
          return [{ type: 'credential.secret.rotation_overdue', data: { secretId: state.secretId!, dueAt: state.nextRotationAt, overdueAt: iso(now) } }];
        }
        if (now >= due && state.dueNoticeFor !== state.nextRotationAt) {
          return [{ type: 'credential.secret.rotation_due', data: { secretId: state.secretId!, dueAt: state.nextRotationAt } }];
        }
        return [];
      }
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'credential.secret.created':
        return {
          ...state,
          status: 'active',
          secretId: event.data.secretId,
          name: event.data.name,
          scopes: event.data.scopes,
          currentVersion: 1,
          versions: [{ version: 1, state: 'current' }],
          rotationDays: event.data.rotationDays,
          overlapSeconds: event.data.overlapSeconds,
          nextRotationAt: event.data.nextRotationAt,
        };
      case 'credential.secret.rotated':
        return {
          ...state,
          currentVersion: event.data.version,
          nextRotationAt: event.data.nextRotationAt,
          versions: [
            ...state.versions.map((v): VersionState =>
              v.version === event.data.previousVersion ? { ...v, state: 'overlap', retiresAt: event.data.previousRetiresAt } : v,
            ),
            { version: event.data.version, state: 'current' },
          ],
        };
      case 'credential.secret.version_retired':
        return { ...state, versions: state.versions.map((v): VersionState => (v.version === event.data.version ? { version: v.version, state: 'retired' } : v)) };
      case 'credential.secret.revoked':
        return { ...state, status: 'revoked' };
      case 'credential.secret.shredded':
        return { ...state, status: 'shredded', versions: state.versions.map((v): VersionState => ({ version: v.version, state: 'retired' })) };
      case 'credential.secret.rotation_due':
        return { ...state, dueNoticeFor: event.data.dueAt };
      case 'credential.secret.rotation_overdue':
        return { ...state, dueNoticeFor: event.data.dueAt, overdueNoticeFor: event.data.dueAt };
    }
  },
};
