import { Controller, Get, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { AuthGuard, Public } from './auth.guard';
import { ServiceCallers } from './mtls.guard';

@Controller()
class Routes {
  @Get('open')
  @Public()
  open() {}

  @Get('internal')
  @ServiceCallers('policy')
  internal() {}

  @Get('closed')
  closed() {}
}

const principal: Principal = { type: 'user', id: 'u-1', tenantId: 'acme' };

function contextFor(handler: keyof Routes, authorization?: string, xApiKey?: string) {
  const req: Record<string, unknown> = {
    header: (name: string) => (name === 'authorization' ? authorization : name === 'x-api-key' ? xApiKey : undefined),
    socket: { authorized: false },
  };
  const ctx = {
    getType: () => 'http',
    getHandler: () => Routes.prototype[handler],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
  return { ctx, req };
}

describe('AuthGuard', () => {
  const verified: string[] = [];
  const guard = new AuthGuard(new Reflector(), {
    async verify(token: string) {
      verified.push(token);
      if (token !== 'good.token.sig') throw new PalisadeError('unauthenticated', 'access token signature is invalid');
      return { principal, claims: {} as never };
    },
  });

  it('lets public and certificate-admitted routes through without a token', async () => {
    await expect(guard.canActivate(contextFor('open').ctx)).resolves.toBe(true);
    await expect(guard.canActivate(contextFor('internal').ctx)).resolves.toBe(true);
    expect(verified).toEqual([]);
  });

  it('denies by default: no token, a malformed header, or a bad token', async () => {
    await expect(guard.canActivate(contextFor('closed').ctx)).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringContaining('Bearer') });
    await expect(guard.canActivate(contextFor('closed', 'Basic dXNlcjpwYXNz').ctx)).rejects.toMatchObject({ code: 'unauthenticated' });
    await expect(guard.canActivate(contextFor('closed', 'Bearer bad.token.sig').ctx)).rejects.toMatchObject({ message: 'access token signature is invalid' });
  });

  it('attaches the verified principal to the request', async () => {
    const { ctx, req } = contextFor('closed', 'Bearer good.token.sig');
    await expect(guard.canActivate(ctx)).resolves.toBe(true);
    expect(req.principal).toEqual(principal);
  });

  describe('API keys (a service that admits them)', () => {
    const KEY = `palisade_${'a1'.repeat(12)}_${'S'.repeat(43)}`;
    const agent: Principal = { type: 'agent', id: 'bot', tenantId: 'acme', sessionId: `apikey-${'a1'.repeat(12)}` };
    const asked: string[] = [];
    const withKeys = new AuthGuard(new Reflector(), { verify: async () => ({ principal, claims: {} as never }) }, {
      async principalOf(apiKey: string) {
        asked.push(apiKey);
        if (apiKey !== KEY) throw new PalisadeError('unauthenticated', 'the API key is not valid');
        return agent;
      },
    });

    it('takes an API key as the bearer value or in x-api-key, the principal being the one auth names', async () => {
      for (const [authorization, xApiKey] of [[`Bearer ${KEY}`, undefined], [undefined, KEY]]) {
        const { ctx, req } = contextFor('closed', authorization, xApiKey);
        await expect(withKeys.canActivate(ctx)).resolves.toBe(true);
        expect(req.principal).toEqual(agent);
      }
      expect(asked).toEqual([KEY, KEY]);
    });

    it('refuses a key auth refuses, and anything in x-api-key that is not an API key, without asking', async () => {
      const other = `palisade_${'b2'.repeat(12)}_${'S'.repeat(43)}`;
      await expect(withKeys.canActivate(contextFor('closed', `Bearer ${other}`).ctx)).rejects.toMatchObject({ code: 'unauthenticated' });
      asked.length = 0;
      await expect(withKeys.canActivate(contextFor('closed', undefined, 'sk-not-ours').ctx)).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringContaining('x-api-key') });
      expect(asked).toEqual([]);
      // tokens still go to the token verifier
      await expect(withKeys.canActivate(contextFor('closed', 'Bearer good.token.sig').ctx)).resolves.toBe(true);
    });

    it('a service that does not admit API keys says to exchange them for a token', async () => {
      await expect(guard.canActivate(contextFor('closed', `Bearer ${KEY}`).ctx)).rejects.toMatchObject({ code: 'unauthenticated', message: expect.stringContaining('exchange') });
      await expect(guard.canActivate(contextFor('closed', undefined, KEY).ctx)).rejects.toMatchObject({ code: 'unauthenticated' });
      expect(verified).not.toContain(KEY);
    });
  });
});
