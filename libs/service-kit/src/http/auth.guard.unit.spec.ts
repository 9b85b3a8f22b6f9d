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

function contextFor(handler: keyof Routes, authorization?: string) {
  const req: Record<string, unknown> = {
    header: (name: string) => (name === 'authorization' ? authorization : undefined),
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
});
