import { ExecutionTokens } from './egress.execution-tokens';

describe('ExecutionTokens', () => {
  it('holds the token of the running execution until it is released', async () => {
    const tokens = new ExecutionTokens();
    const release = tokens.hold('sbx-1', 'exec-1', 'token-a');
    expect(await tokens.grantToken({ sandboxId: 'sbx-1' })).toBe('token-a');
    release();
    expect(tokens.tokenFor('sbx-1')).toBeUndefined();
    expect(tokens.size()).toBe(0);
  });

  it('refuses a grant when no execution runs in the sandbox (fail-closed), naming no token', async () => {
    const tokens = new ExecutionTokens();
    tokens.hold('sbx-1', 'exec-1', 'token-a');
    await expect(tokens.grantToken({ sandboxId: 'sbx-2' })).rejects.toThrow(/no execution holds a token in this sandbox/);
  });

  it("an earlier execution's release never drops a later execution's token; releasing twice is harmless", () => {
    const tokens = new ExecutionTokens();
    const first = tokens.hold('sbx-1', 'exec-1', 'token-a');
    first();
    const second = tokens.hold('sbx-1', 'exec-2', 'token-b');
    first();
    expect(tokens.tokenFor('sbx-1')).toBe('token-b');
    second();
    second();
    expect(tokens.size()).toBe(0);
  });

  it('knows the agent of the running execution (its rule set narrows the tenant’s), none for a person’s', () => {
    const tokens = new ExecutionTokens();
    const release = tokens.hold('sbx-1', 'exec-1', 'token-a', 'release-bot');
    tokens.hold('sbx-2', 'exec-2', 'token-b');
    expect(tokens.agentFor('sbx-1')).toBe('release-bot');
    expect(tokens.agentFor('sbx-2')).toBeUndefined();
    release();
    expect(tokens.agentFor('sbx-1')).toBeUndefined();
  });
});
