import { DeciderSpecification } from '@palisade/eventsourcing';
import { keyringDecider, type KeyringCommand } from './keyring.decider';
import type { KeyringEvent } from './keyring.events';

const spec = DeciderSpecification.for(keyringDecider);
const cmd = (type: KeyringCommand['type'], data: object) =>
  ({ type, data, metadata: { tenantId: 'acme', actor: { type: 'user', id: 'u-1' }, now: new Date('2026-01-01T00:00:00.000Z') } }) as KeyringCommand;
const provisioned: KeyringEvent = {
  type: 'credential.keyring.provisioned',
  data: { provider: 'aws-kms', cipher: 'aes-256-gcm', origin: 'referenced', keyRef: 'aws-kms:arn:k1', keyVersion: 1 },
};

describe('key ring decider', () => {
  it('provisions version 1 once', () => {
    spec([]).when(cmd('provision', { provider: 'aws-kms', cipher: 'aes-256-gcm', origin: 'referenced', keyRef: 'aws-kms:arn:k1' })).then([provisioned]);
    spec([provisioned]).when(cmd('provision', provisioned.data)).thenThrows('conflict');
  });

  it('rotates to the next version and retires only a key being retired', () => {
    const rotated: KeyringEvent = {
      type: 'credential.keyring.rotated',
      data: { provider: 'local', origin: 'generated', keyRef: 'local:k2', reason: 'rotation', fromVersion: 1, keyVersion: 2 },
    };
    spec([provisioned]).when(cmd('rotate', { provider: 'local', origin: 'generated', keyRef: 'local:k2', reason: 'rotation' })).then([rotated]);
    spec([provisioned, rotated])
      .when(cmd('retire', { keyVersion: 1, destroyed: false, rewrapped: 3 }))
      .then([{ type: 'credential.keyring.key_retired', data: { keyVersion: 1, destroyed: false, rewrapped: 3 } }]);
    spec([provisioned, rotated]).when(cmd('retire', { keyVersion: 2, destroyed: true, rewrapped: 0 })).thenThrows('illegal_state');
  });

  it('revokes a BYOK key once, recording its origin', () => {
    const revoked: KeyringEvent = { type: 'credential.keyring.key_revoked', data: { keyVersion: 1, destroyed: false, reason: 'customer revoked', origin: 'referenced' } };
    spec([provisioned]).when(cmd('revoke', { keyVersion: 1, destroyed: false, reason: 'customer revoked' })).then([revoked]);
    spec([provisioned, revoked]).when(cmd('revoke', { keyVersion: 1, destroyed: false, reason: 'again' })).thenThrows('illegal_state');
    spec([provisioned]).when(cmd('revoke', { keyVersion: 7, destroyed: false, reason: 'x' })).thenThrows('not_found');
  });
});
