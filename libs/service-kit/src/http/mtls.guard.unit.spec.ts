import { Controller, Get, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { MtlsGuard, OperatorCallers, platformCaller } from './mtls.guard';

@Controller()
class Routes {
  @Get('metrics')
  @OperatorCallers()
  metrics() {}

  @Get('open')
  open() {}
}

/** A request over TLS whose client certificate (if `authorized`) carries this URI SAN. */
function requestWith(authorized: boolean, uri?: string): Request {
  return { socket: { authorized, getPeerCertificate: () => ({ subjectaltname: uri ? `URI:${uri}` : undefined }) } } as unknown as Request;
}

const contextFor = (handler: keyof Routes, req: Request) =>
  ({ getType: () => 'http', getHandler: () => Routes.prototype[handler], getClass: () => Routes, switchToHttp: () => ({ getRequest: () => req }) }) as unknown as ExecutionContext;

describe('operator routes (metrics, readiness details)', () => {
  it('names the platform identity of a verified client certificate: a service or an admin', () => {
    expect(platformCaller(requestWith(true, 'spiffe://palisade.local/service/billing'))).toBe('service:billing');
    expect(platformCaller(requestWith(true, 'spiffe://palisade.local/admin/platform'))).toBe('admin:platform');
    expect(platformCaller(requestWith(false, 'spiffe://palisade.local/admin/platform'))).toBeUndefined(); // not from our CA
    expect(platformCaller(requestWith(true, 'spiffe://other.example/admin/platform'))).toBeUndefined();
    expect(platformCaller(requestWith(true, 'spiffe://palisade.local/service/mailer'))).toBeUndefined();
    expect(platformCaller(requestWith(true))).toBeUndefined();
  });

  it('refuses an anonymous caller of an operator route, admits a platform certificate, and leaves other routes alone', () => {
    const guard = new MtlsGuard(new Reflector());
    expect(() => guard.canActivate(contextFor('metrics', requestWith(false)))).toThrow(expect.objectContaining({ code: 'unauthenticated' }));
    expect(guard.canActivate(contextFor('metrics', requestWith(true, 'spiffe://palisade.local/admin/ops')))).toBe(true);
    expect(guard.canActivate(contextFor('metrics', requestWith(true, 'spiffe://palisade.local/service/audit')))).toBe(true);
    expect(guard.canActivate(contextFor('open', requestWith(false)))).toBe(true);
  });
});
