import { PalisadeError, SERVICE_NAMES } from '@palisade/contracts';
import { assertServiceGrant, SERVICE_GRANTS } from './service-grants';
import { isReservedForPeople } from './token-issuer';

const refusal = (f: () => void): PalisadeError | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e as PalisadeError;
  }
};

describe('service grants (POST /v1/service-tokens)', () => {
  it('gives a service what its row allows', () => {
    expect(refusal(() => assertServiceGrant('credential', { audience: ['palisade:policy'], scopes: ['policy:decide'] }))).toBeUndefined();
    expect(refusal(() => assertServiceGrant('llm-router', { audience: ['palisade:billing'], scopes: [] }))).toBeUndefined();
  });

  it.each([
    ['llm-router', ['palisade:audit'], ['audit:read:all'], 'scope audit:read:all'],
    ['llm-router', ['palisade:auth'], ['platform:admin'], 'scope platform:admin'],
    ['sandbox-orchestrator', ['palisade:audit'], ['audit:erase'], 'scope audit:erase'],
    ['sandbox-orchestrator', ['palisade:auth'], ['auth:keys'], 'scope auth:keys'],
    ['billing', ['palisade:credential'], ['credential:use'], 'scope credential:use'],
    ['llm-router', ['palisade:credential'], [], 'audience palisade:credential'],
    ['policy', ['palisade:policy'], [], 'audience palisade:policy'],
  ] as const)('refuses %s %j %j with 403 naming it', (service, audience, scopes, named) => {
    expect(refusal(() => assertServiceGrant(service, { audience, scopes }))).toMatchObject({ code: 'forbidden', message: expect.stringContaining(named) });
  });

  it('never gives a scope reserved for people, even if a row were edited to grant it', () => {
    const careless = { 'llm-router': { audiences: ['palisade:audit', 'palisade:auth'], scopes: ['audit:read:all', 'platform:admin', 'platform:anything', 'audit:erase', 'credential:erase', 'auth:keys'] } };
    for (const scope of careless['llm-router'].scopes) {
      expect(refusal(() => assertServiceGrant('llm-router', { audience: ['palisade:audit'], scopes: [scope] }, careless))).toMatchObject({
        code: 'forbidden',
        message: `scope ${scope} is never given to a service`,
      });
    }
  });

  it('has a row for every service, and no row holds a reserved scope', () => {
    expect(Object.keys(SERVICE_GRANTS).sort()).toEqual([...SERVICE_NAMES].sort());
    for (const grant of Object.values(SERVICE_GRANTS)) expect(grant.scopes.filter(isReservedForPeople)).toEqual([]);
    expect(['platform:admin', 'audit:read:all', 'auth:keys', 'audit:erase'].every(isReservedForPeople)).toBe(true);
    expect(['policy:decide', 'audit:read', 'auth:admin'].some(isReservedForPeople)).toBe(false);
  });
});
