import { SetMetadata, type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { TLSSocket } from 'node:tls';
import { PalisadeError, TRUST_DOMAIN, type ServiceName } from '@palisade/contracts';
import { serviceOfSpiffeId, spiffeIdOf } from '@palisade/pki';
import type { Request } from 'express';

export const SERVICE_CALLERS = 'palisade.mtls.callers';

/** Only these services, proven by a client certificate from our CA, may call the route. */
export const ServiceCallers = (...services: ServiceName[]) => SetMetadata(SERVICE_CALLERS, services);

export const OPERATOR_CALLERS = 'palisade.mtls.operators';
/**
 * Only operators' tools may call the route: a client certificate from our CA naming a
 * Palisade service (Prometheus scrapes with one) or an admin
 * (`spiffe://palisade.local/admin/<name>`, `pki.js issue --kind admin`).
 */
export const OperatorCallers = () => SetMetadata(OPERATOR_CALLERS, true);

const ADMIN_PREFIX = `spiffe://${TRUST_DOMAIN}/admin/`;

/** The platform identity of the caller's verified client certificate (`service:<name>`, `admin:<name>`); undefined without one. */
export function platformCaller(req: Request): string | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const spiffeId = spiffeIdOf(socket.getPeerCertificate(false));
  const service = serviceOfSpiffeId(spiffeId);
  if (service) return `service:${service}`;
  const admin = spiffeId?.startsWith(ADMIN_PREFIX) ? spiffeId.slice(ADMIN_PREFIX.length) : '';
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(admin) ? `admin:${admin}` : undefined;
}

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
 * services a route names with @ServiceCallers, and platform certificates (services,
 * admins) where a route says @OperatorCallers. Routes without either are not affected.
 */
@Injectable()
export class MtlsGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean | undefined>(OPERATOR_CALLERS, [context.getHandler(), context.getClass()])) {
      if (!platformCaller(context.switchToHttp().getRequest<Request>())) {
        throw new PalisadeError('unauthenticated', 'a client certificate of the platform (a service or an admin) is required');
      }
      return true;
    }
    const allowed = this.reflector.getAllAndOverride<ServiceName[] | undefined>(SERVICE_CALLERS, [context.getHandler(), context.getClass()]);
    if (!allowed) return true;
    const caller = callingService(context.switchToHttp().getRequest<Request>());
    if (!caller) throw new PalisadeError('unauthenticated', 'a client certificate of a Palisade service is required');
    if (!allowed.includes(caller)) throw new PalisadeError('forbidden', `service ${caller} may not call this endpoint`);
    return true;
  }
}
