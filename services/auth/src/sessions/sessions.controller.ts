import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { TLSSocket } from 'node:tls';
import { z } from 'zod';
import { certificateThumbprint } from '@palisade/auth-verifier';
import { PalisadeError, SERVICE_NAMES, type Principal } from '@palisade/contracts';
import { callingService, CurrentPrincipal, ServiceCallers } from '@palisade/service-kit';
import { audience, parse, requireScope } from '../validation';
import { assertServiceGrant } from './service-grants';
import { SessionsService } from './sessions.service';
import { Administers } from '../administration';

const serviceTokenBody = z.strictObject({ audience, scopes: z.array(z.string().regex(/^[a-z][a-z0-9:._-]{0,63}$/)).max(32).default([]) });

@ApiTags('sessions')
@Controller('v1')
export class SessionsController {
  constructor(@Inject(SessionsService) private readonly sessions: SessionsService) {}

  @Administers('sessions')
  @Post('sessions/:sessionId/revoke')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke one session of the tenant; its tokens are refused everywhere within a second (scope auth:admin)' })
  async revoke(@CurrentPrincipal() admin: Principal, @Param('sessionId') sessionId: string) {
    requireScope(admin, 'auth:admin');
    await this.sessions.revokeSession(admin, parse(z.string().uuid('must be a session id'), sessionId));
  }

  /**
   * A service proves itself with its mTLS client certificate and gets an access token
   * bound to that certificate (RFC 8705 cnf x5t#S256): useless without the private key.
   */
  @Post('service-tokens')
  @HttpCode(200)
  @ServiceCallers(...SERVICE_NAMES)
  @ApiOperation({ summary: 'Service-to-service only (mTLS): an access token for the calling service, bound to its certificate; only the audiences and scopes its row of SERVICE_GRANTS allows (403 naming the first other one)' })
  async serviceToken(@Req() req: Request, @Body() body: unknown) {
    const input = parse(serviceTokenBody, body);
    const caller = callingService(req);
    const certificate = (req.socket as TLSSocket).getPeerX509Certificate?.();
    if (!caller || !certificate) throw new PalisadeError('unauthenticated', 'a client certificate of a Palisade service is required');
    assertServiceGrant(caller, { audience: input.audience, scopes: input.scopes });
    return this.sessions.serviceToken(caller, input.audience, input.scopes, certificateThumbprint(certificate));
  }
}
