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

/** auth's API keys (`palisade_<key id>_<secret>`), recognised before anything is verified. */
const API_KEY = /^palisade_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$/;

/** Verifies an API key of the auth service: the principal it stands for, or `unauthenticated`. */
export interface ApiKeyResolver {
  principalOf(apiKey: string): Promise<Principal>;
}

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
 * A service that admits API keys directly (`apiKeys`) also takes one of auth's API keys
 * as the bearer value or in `x-api-key` (what the Anthropic SDK sends), verified by auth.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly verifier: Pick<AccessTokenVerifier, 'verify'>,
    private readonly apiKeys?: ApiKeyResolver,
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
    const apiKey = match && API_KEY.test(match[1]) ? match[1] : !header ? req.header('x-api-key') : undefined;
    if (apiKey !== undefined) {
      if (!this.apiKeys || !API_KEY.test(apiKey)) throw new PalisadeError('unauthenticated', this.apiKeys ? 'x-api-key is not an API key of the auth service' : 'API keys are not accepted here: exchange the key for an access token at the auth service');
      req.principal = await this.apiKeys.principalOf(apiKey);
      return true;
    }
    if (!match) throw new PalisadeError('unauthenticated', 'an access token is required (Authorization: Bearer …)');
    const socket = req.socket as TLSSocket;
    const peer = socket.authorized ? socket.getPeerX509Certificate?.() : undefined;
    const { principal } = await this.verifier.verify(match[1], peer ? { clientCertificate: peer } : {});
    req.principal = principal;
    return true;
  }
}
