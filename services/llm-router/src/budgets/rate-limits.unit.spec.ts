import { limitsOf, subjectsOf } from './rate-limits';

describe('limitsOf', () => {
  const settings = {
    perAgent: { requestsPerMinute: 10, tokensPerMinute: 5000 },
    perKey: { requestsPerMinute: 3 },
    agents: { 'batch-bot': { tokensPerMinute: 90_000 }, 'user:alice': {} },
    keys: { k9: { requestsPerMinute: 30 } },
  };

  it("gives an agent or key without an entry the tenant's defaults", () => {
    expect(limitsOf(settings, { agent: 'bot', key: 'k1' })).toEqual({ agent: settings.perAgent, key: settings.perKey });
  });

  it('replaces the default whole for a named agent or key: a limit the entry leaves out is not inherited, {} lifts both', () => {
    expect(limitsOf(settings, { agent: 'batch-bot', key: 'k9' })).toEqual({ agent: { tokensPerMinute: 90_000 }, key: { requestsPerMinute: 30 } });
    expect(limitsOf(settings, subjectsOf({ type: 'user', id: 'alice', tenantId: 't' }))).toEqual({ agent: {}, key: undefined });
  });

  it('has no key limits for a call without an API key, and none at all without settings', () => {
    expect(limitsOf(settings, { agent: 'bot' }).key).toBeUndefined();
    expect(limitsOf(undefined, { agent: 'bot', key: 'k1' })).toEqual({ agent: undefined, key: undefined });
  });

  it('reads only the entries the settings hold, never a name every object inherits', () => {
    for (const agent of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) expect(limitsOf(settings, { agent, key: agent })).toEqual({ agent: settings.perAgent, key: settings.perKey });
  });
});
