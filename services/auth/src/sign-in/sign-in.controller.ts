import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, Public } from '@palisade/service-kit';
import { SessionsService } from '../sessions/sessions.service';
import { providerIdParam } from '../identity-providers/identity-providers.dto';
import { parse, tenantId } from '../validation';
import { refreshBody, signInBody } from './sign-in.dto';
import { SignInService } from './sign-in.service';

@ApiTags('sign-in')
@Controller('v1')
export class SignInController {
  constructor(
    @Inject(SignInService) private readonly signIns: SignInService,
    @Inject(SessionsService) private readonly sessions: SessionsService,
  ) {}

  @Post('tenants/:tenantId/sign-in')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Password sign-in: an access token and a refresh token (401 for any wrong credential, 429 while locked out)' })
  signIn(@Param('tenantId') tenant: string, @Body() body: unknown, @Req() req: Request) {
    const input = parse(signInBody, body);
    return this.signIns.signIn({ tenantId: parse(tenantId, tenant), ...input, sourceAddress: req.socket.remoteAddress ?? 'unknown' });
  }

  @Post('tenants/:tenantId/sign-in/ldap/:providerId')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'LDAP / Active Directory sign-in through a provider of the tenant: tokens, or the second-factor step (401 wrong credentials, 429 locked out)' })
  signInWithLdap(@Param('tenantId') tenant: string, @Param('providerId') providerId: string, @Body() body: unknown, @Req() req: Request) {
    const input = parse(signInBody, body);
    return this.signIns.signInWithLdap({ tenantId: parse(tenantId, tenant), providerId: parse(providerIdParam, providerId), ...input, sourceAddress: req.socket.remoteAddress ?? 'unknown' });
  }

  @Post('token/refresh')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange a refresh token for the next one and a new access token; reuse revokes the session' })
  refresh(@Body() body: unknown) {
    return this.sessions.refresh(parse(refreshBody, body).refreshToken);
  }

  @Post('sign-out')
  @HttpCode(204)
  @ApiOperation({ summary: "End the caller's session; its tokens are refused by every service within a second" })
  async signOut(@CurrentPrincipal() principal: Principal) {
    await this.sessions.signOut(principal);
  }
}
