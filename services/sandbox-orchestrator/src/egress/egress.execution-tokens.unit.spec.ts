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
});
