import { createParamDecorator, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { TLSSocket } from 'node:tls';
import { PalisadeError, type Principal } from '@palisade/contracts';
import type { AccessTokenVerifier } from '@palisade/auth-verifier';
import type { Request } from 'express';
import { OPERATOR_CALLERS, SERVICE_CALLERS } from './mtls.guard';

const PUBLIC = 'palisade.auth.public';

/** The route needs no credentials (health, metrics, sign-in, JWKS). */
export const Public = () => SetMetadata(PUBLIC, true);

type AuthenticatedRequest = Request & { principal?: Principal };

/** The authenticated caller of this request. */
export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<AuthenticatedRequest>().principal;
  if (!principal) throw new PalisadeError('unauthenticated', 'no authenticated principal');
  return principal;
});

/**
 * Deny by default: every route needs a valid access token (Authorization: Bearer),
 * unless it is @Public() or admits callers by client certificate (@ServiceCallers,
 * @OperatorCallers, both enforced by MtlsGuard).
 * Tokens bound to a certificate must come over a connection presenting it.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: Pick<AccessTokenVerifier, 'verify'>,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, targets)) return true;
    if (this.reflector.getAllAndOverride(SERVICE_CALLERS, targets)) return true;
    if (this.reflector.getAllAndOverride(OPERATOR_CALLERS, targets)) return true;
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = req.header('authorization');
    const match = header ? /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header) : null;
    if (!match) throw new PalisadeError('unauthenticated', 'an access token is required (Authorization: Bearer …)');
    const socket = req.socket as TLSSocket;
    const peer = socket.authorized ? socket.getPeerX509Certificate?.() : undefined;
    const { principal } = await this.verifier.verify(match[1], peer ? { clientCertificate: peer } : {});
    req.principal = principal;
    return true;
  }
}
