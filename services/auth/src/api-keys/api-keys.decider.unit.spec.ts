import { DeciderSpecification } from '@palisade/eventsourcing';
import { apiKeyIdOf, matchesAny, newApiKeySecret } from './api-key-secret';
import { apiKeyDecider } from './api-keys.decider';
import type { ApiKeyEvent } from './api-keys.events';

const given = DeciderSpecification.for(apiKeyDecider);
const now = new Date('2026-01-01T00:00:00.000Z');
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'u-1' }, now };
const create = { keyId: 'k1', owner: { type: 'user' as const, id: 'u-1' }, name: 'ci', scopes: ['auth:admin'], expiresAt: '2026-04-01T00:00:00.000Z', grantable: ['auth:admin'] };
const created: ApiKeyEvent = { type: 'auth.api-key.created', data: { keyId: 'k1', owner: { type: 'user', id: 'u-1' }, name: 'ci', scopes: ['auth:admin'], expiresAt: '2026-04-01T00:00:00.000Z' } };

describe('API key decider', () => {
  it('creates a key with scopes the owner holds, and refuses any more', () => {
    given([]).when({ type: 'CreateApiKey', data: create, metadata }).then([created]);
    given([]).when({ type: 'CreateApiKey', data: { ...create, scopes: ['auth:admin', 'auth:keys'] }, metadata }).thenThrows('forbidden', 'auth:keys');
    given([created]).when({ type: 'CreateApiKey', data: create, metadata }).thenThrows('conflict');
  });

  it('refuses an expiry in the past or beyond a year', () => {
    given([]).when({ type: 'CreateApiKey', data: { ...create, expiresAt: '2025-12-31T00:00:00.000Z' }, metadata }).thenThrows('validation', 'expiresAt');
    given([]).when({ type: 'CreateApiKey', data: { ...create, expiresAt: '2027-06-01T00:00:00.000Z' }, metadata }).thenThrows('validation', 'expiresAt');
  });

  it('rotates with an overlap that never outlives the key, and not once revoked', () => {
    given([created])
      .when({ type: 'RotateApiKey', data: { keyId: 'k1', overlapSec: 3600 }, metadata })
      .then([{ type: 'auth.api-key.rotated', data: { keyId: 'k1', previousSecretValidUntil: '2026-01-01T01:00:00.000Z' } }]);
    const revoked: ApiKeyEvent = { type: 'auth.api-key.revoked', data: { keyId: 'k1', reason: 'owner' } };
    given([created, revoked]).when({ type: 'RotateApiKey', data: { keyId: 'k1', overlapSec: 60 }, metadata }).thenThrows('conflict', 'revoked');
    given([]).when({ type: 'RotateApiKey', data: { keyId: 'k1', overlapSec: 60 }, metadata }).thenThrows('not_found');
  });

  it('revokes once', () => {
    given([created]).when({ type: 'RevokeApiKey', data: { keyId: 'k1', reason: 'admin' }, metadata }).then([{ type: 'auth.api-key.revoked', data: { keyId: 'k1', reason: 'admin' } }]);
    given([created, { type: 'auth.api-key.revoked', data: { keyId: 'k1', reason: 'admin' } }]).when({ type: 'RevokeApiKey', data: { keyId: 'k1', reason: 'admin' }, metadata }).then([]);
  });

  it('makes keys with a recognisable prefix, a locating id and only a digest to store', () => {
    const { apiKey, hash } = newApiKeySecret('0123456789abcdef01234567');
    expect(apiKey).toMatch(/^palisade_0123456789abcdef01234567_[A-Za-z0-9_-]{43}$/);
    expect(apiKeyIdOf(apiKey)).toBe('0123456789abcdef01234567');
    expect(matchesAny(apiKey, [Buffer.alloc(32), hash])).toBe(true);
    expect(matchesAny(`${apiKey.slice(0, -1)}${apiKey.endsWith('A') ? 'B' : 'A'}`, [hash])).toBe(false);
    expect(apiKeyIdOf('palisade_nothex_x')).toBeUndefined();
  });
});
