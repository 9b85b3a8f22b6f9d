import { admitCaller, decidePut, decideRead } from './service-secrets.policy';

const idp = { scopes: ['auth:idp'], state: 'active' };
const tool = { scopes: ['tool:gerrit'], state: 'active' };

describe('service secrets: who may put and read what', () => {
  it('creates under the caller’s scope, rotates its own, refuses a name it does not own or that is revoked', () => {
    expect(decidePut('auth', undefined)).toEqual({ do: 'create', scope: 'auth:idp' });
    expect(decidePut('auth', idp)).toEqual({ do: 'rotate' });
    expect(decidePut('auth', tool)).toMatchObject({ do: 'refuse', code: 'conflict' });
    expect(decidePut('auth', { ...idp, state: 'revoked' })).toMatchObject({ do: 'refuse', code: 'illegal_state' });
    expect(decidePut('billing', undefined)).toMatchObject({ do: 'refuse', code: 'forbidden' });
    // the router keeps the tenants' model-provider API keys under a scope of its own
    expect(decidePut('llm-router', undefined)).toEqual({ do: 'create', scope: 'llm-router:provider-key' });
    expect(decidePut('llm-router', idp)).toMatchObject({ do: 'refuse', code: 'conflict' });
  });

  it('reads only the caller’s own scope: a tool secret, an unknown id or another service is not found', () => {
    expect(decideRead('auth', idp)).toEqual({ do: 'read' });
    expect(decideRead('auth', tool)).toMatchObject({ do: 'refuse', code: 'not_found' });
    expect(decideRead('auth', undefined)).toMatchObject({ do: 'refuse', code: 'not_found' });
    expect(decideRead('sandbox-orchestrator', idp)).toMatchObject({ do: 'refuse', code: 'not_found' });
    expect(decideRead('llm-router', idp)).toMatchObject({ do: 'refuse', code: 'not_found' });
    expect(decideRead('llm-router', { scopes: ['llm-router:provider-key'], state: 'active' })).toEqual({ do: 'read' });
    expect(decideRead('auth', { ...idp, state: 'revoked' })).toMatchObject({ do: 'refuse', code: 'illegal_state' });
  });

  it('admits only a service that keeps secrets (auth, llm-router), asking from its own inbox', () => {
    expect(admitCaller('auth')).toBe('auth');
    expect(admitCaller('llm-router')).toBe('llm-router');
    expect(() => admitCaller('billing')).toThrow(expect.objectContaining({ code: 'forbidden', message: 'billing keeps no secrets in the vault' }));
    expect(() => admitCaller(undefined)).toThrow(expect.objectContaining({ code: 'forbidden' }));
  });
});
