import { scopesOf } from '../sessions/token-issuer';
import { effectiveKeyScopes, grantableScopes } from './api-key-scopes';

const serviceAccount = { type: 'service-account' as const };
const user = { type: 'user' as const };
const operatorAdmin = [...scopesOf(['admin', 'platform-admin', 'platform-auditor'], true), 'audit:erase', 'credential:erase'];

describe('API key scopes', () => {
  it('caps a service account key: never auth:keys, a platform scope, *:erase or audit:read:all, even from an operator who holds them', () => {
    expect(operatorAdmin).toEqual(expect.arrayContaining(['auth:keys', 'platform:admin', 'audit:read:all', 'audit:erase']));
    expect(grantableScopes(serviceAccount, operatorAdmin).sort()).toEqual(['audit:admin', 'auth:admin', 'policy:admin']);
    // A user's own key: no platform scope either (provisioning is for a signed-in person).
    expect(grantableScopes(user, operatorAdmin)).not.toEqual(expect.arrayContaining(['platform:admin']));
    expect(grantableScopes(user, operatorAdmin)).not.toContain('audit:read:all');
  });

  it('narrows a key to what its sponsor holds now: demoting the sponsor narrows the key', () => {
    const key = { owner: serviceAccount, scopes: ['auth:admin', 'policy:admin'] };
    expect(effectiveKeyScopes(key, scopesOf(['admin'], false))).toEqual(['auth:admin', 'policy:admin']);
    expect(effectiveKeyScopes(key, scopesOf(['auditor'], false))).toEqual([]);
    expect(effectiveKeyScopes(key, scopesOf(['member'], false))).toEqual([]);
  });

  it('stops a key whose person is disabled, gone or unknown', () => {
    expect(effectiveKeyScopes({ owner: serviceAccount, scopes: [] }, undefined)).toBeUndefined();
    expect(effectiveKeyScopes({ owner: user, scopes: ['auth:admin'] }, undefined)).toBeUndefined();
  });

  it('caps an agent key at its owner’s non-administrative scopes, narrowed at each use (issue 12)', () => {
    const agent = { type: 'agent' as const };
    expect(grantableScopes(agent, operatorAdmin)).toEqual([]);
    expect(grantableScopes(agent, [...scopesOf(['admin', 'auditor'], false), 'credential:use'])).toEqual(['audit:read', 'credential:use']);
    expect(effectiveKeyScopes({ owner: agent, scopes: ['audit:read', 'auth:admin', 'agents:manage'] }, scopesOf(['admin', 'auditor'], false))).toEqual(['audit:read']);
    expect(effectiveKeyScopes({ owner: agent, scopes: ['audit:read'] }, scopesOf(['member'], false))).toEqual([]);
    expect(grantableScopes(serviceAccount, scopesOf(['member'], false))).toEqual([]);
  });

  it('never lets a key carry a reserved scope at use, even one stored before the cap', () => {
    expect(effectiveKeyScopes({ owner: serviceAccount, scopes: ['auth:keys', 'audit:read:all', 'auth:admin'] }, operatorAdmin)).toEqual(['auth:admin']);
  });
});
