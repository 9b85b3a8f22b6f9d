import { SetMetadata, type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { TLSSocket } from 'node:tls';
import { PalisadeError, type ServiceName } from '@palisade/contracts';
import { serviceOfSpiffeId, spiffeIdOf } from '@palisade/pki';
import type { Request } from 'express';

export const SERVICE_CALLERS = 'palisade.mtls.callers';

/** Only these services, proven by a client certificate from our CA, may call the route. */
export const ServiceCallers = (...services: ServiceName[]) => SetMetadata(SERVICE_CALLERS, services);

/** The calling service, as its verified client certificate names it; undefined without one. */
export function callingService(req: Request): ServiceName | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const spiffeId = spiffeIdOf(socket.getPeerCertificate(false));
  return spiffeId ? serviceOfSpiffeId(spiffeId) : undefined;
}

/**
 * Service-to-service HTTP requires a client certificate: the TLS layer asks every
 * client for one (verified against the platform CA) and this guard admits only the
 * services a route names with @ServiceCallers. Routes without it are not affected.
 */
@Injectable()
export class MtlsGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const allowed = this.reflector.getAllAndOverride<ServiceName[] | undefined>(SERVICE_CALLERS, [context.getHandler(), context.getClass()]);
    if (!allowed) return true;
    const caller = callingService(context.switchToHttp().getRequest<Request>());
    if (!caller) throw new PalisadeError('unauthenticated', 'a client certificate of a Palisade service is required');
    if (!allowed.includes(caller)) throw new PalisadeError('forbidden', `service ${caller} may not call this endpoint`);
    return true;
  }
}
