import { DeciderSpecification } from '@palisade/eventsourcing';
import { secretDecider, type SecretCommand } from './secrets.decider';
import type { SecretEvent } from './secrets.events';

const spec = DeciderSpecification.for(secretDecider);
const at = (iso: string) => ({ tenantId: 'acme', actor: { type: 'user' as const, id: 'u-1' }, now: new Date(iso) });
const T0 = '2026-01-01T00:00:00.000Z';
const created: SecretEvent = {
  type: 'credential.secret.created',
  data: {
    secretId: 's-1',
    name: 'gerrit',
    scopes: ['tool:gerrit'],
    version: 1,
    cipher: 'aes-256-gcm',
    storage: 'postgres',
    keyVersion: 1,
    rotationDays: 90,
    overlapSeconds: 3600,
    nextRotationAt: '2026-04-01T00:00:00.000Z',
  },
};
const cmd = (type: SecretCommand['type'], data: object, now = T0) => ({ type, data, metadata: at(now) }) as SecretCommand;

describe('secret decider', () => {
  it('records who/when (envelope), name and scopes on create, with the 90-day schedule', () => {
    const { version: _v, nextRotationAt: _n, ...data } = created.data;
    spec([]).when(cmd('create', data)).then([created]);
  });

  it('refuses creating twice', () => {
    spec([created]).when(cmd('create', created.data)).thenThrows('conflict');
  });

  it('rotates to the next version, keeping the previous one for the overlap window', () => {
    spec([created])
      .when(cmd('rotate', { version: 2, rotator: 'manual', keyVersion: 1 }, '2026-03-01T00:00:00.000Z'))
      .then([
        {
          type: 'credential.secret.rotated',
          data: {
            secretId: 's-1',
            version: 2,
            previousVersion: 1,
            previousRetiresAt: '2026-03-01T01:00:00.000Z',
            rotator: 'manual',
            keyVersion: 1,
            nextRotationAt: '2026-05-30T00:00:00.000Z',
          },
        },
      ]);
    spec([created]).when(cmd('rotate', { version: 3, rotator: 'manual', keyVersion: 1 })).thenThrows('conflict', 'next version is 2');
  });

  const rotated: SecretEvent = {
    type: 'credential.secret.rotated',
    data: { secretId: 's-1', version: 2, previousVersion: 1, previousRetiresAt: '2026-03-01T01:00:00.000Z', rotator: 'manual', keyVersion: 1, nextRotationAt: '2026-05-30T00:00:00.000Z' },
  };

  it('retires the old version only after its overlap window', () => {
    spec([created, rotated]).when(cmd('retire-version', { version: 1 }, '2026-03-01T00:30:00.000Z')).thenThrows('illegal_state', 'retires at');
    spec([created, rotated])
      .when(cmd('retire-version', { version: 1 }, '2026-03-01T01:00:00.000Z'))
      .then([{ type: 'credential.secret.version_retired', data: { secretId: 's-1', version: 1 } }]);
    spec([created, rotated]).when(cmd('retire-version', { version: 2 }, '2026-09-01T00:00:00.000Z')).thenThrows('illegal_state');
  });

  it('records the scopes and versions a revocation affects, and refuses rotating afterwards', () => {
    const revoked: SecretEvent = { type: 'credential.secret.revoked', data: { secretId: 's-1', scopesAffected: ['tool:gerrit'], versionsAffected: [1, 2], reason: 'leaked' } };
    spec([created, rotated]).when(cmd('revoke', { reason: 'leaked' })).then([revoked]);
    spec([created, rotated, revoked]).when(cmd('rotate', { version: 3, rotator: 'manual', keyVersion: 1 })).thenThrows('illegal_state');
    spec([created, rotated, revoked]).when(cmd('revoke', { reason: 'again' })).thenThrows('illegal_state');
  });

  it('shreds, after which the secret is not found', () => {
    const shredded: SecretEvent = { type: 'credential.secret.shredded', data: { secretId: 's-1', versionsDestroyed: [1], reason: 'offboarding' } };
    spec([created]).when(cmd('shred', { reason: 'offboarding' })).then([shredded]);
    spec([created, shredded]).when(cmd('revoke', { reason: 'x' })).thenThrows('not_found');
  });

  it('announces a due rotation once, then overdue once after the grace period', () => {
    const check = (now: string) => cmd('check-rotation', { overdueAfterDays: 7 }, now);
    spec([created]).when(check('2026-03-31T23:59:59.999Z')).then([]);
    const due: SecretEvent = { type: 'credential.secret.rotation_due', data: { secretId: 's-1', dueAt: '2026-04-01T00:00:00.000Z' } };
    spec([created]).when(check('2026-04-01T00:00:00.000Z')).then([due]);
    spec([created, due]).when(check('2026-04-02T00:00:00.000Z')).then([]);
    const overdue: SecretEvent = { type: 'credential.secret.rotation_overdue', data: { secretId: 's-1', dueAt: '2026-04-01T00:00:00.000Z', overdueAt: '2026-04-08T00:00:00.000Z' } };
    spec([created, due]).when(check('2026-04-08T00:00:00.000Z')).then([overdue]);
    spec([created, due, overdue]).when(check('2026-05-08T00:00:00.000Z')).then([]);
    // A rotation moves the schedule: no notice until the new date.
    spec([created, due, overdue, rotated]).when(check('2026-05-08T00:00:00.000Z')).then([]);
  });
});
