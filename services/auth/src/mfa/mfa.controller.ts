import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, Public } from '@palisade/service-kit';
import { userIdParam } from '../users/users.dto';
import { parse, requireScope } from '../validation';
import { confirmBody, enrolmentBody, enrolmentConfirmBody, verifyBody } from './mfa.dto';
import { MfaService } from './mfa.service';
import { Administers } from '../administration';

const sourceOf = (req: Request) => req.socket.remoteAddress ?? 'unknown';

@ApiTags('mfa')
@Controller('v1')
export class MfaController {
  constructor(@Inject(MfaService) private readonly mfa: MfaService) {}

  @Post('mfa/verify')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Second step of sign-in: { mfaToken, code } or { mfaToken, recoveryCode } → tokens (401 wrong code, 429 locked out)' })
  verify(@Body() body: unknown, @Req() req: Request) {
    const input = parse(verifyBody, body);
    return this.mfa.verify(input.mfaToken, 'code' in input ? { code: input.code } : { recoveryCode: input.recoveryCode }, sourceOf(req));
  }

  @Post('mfa/enrolment')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Mandatory 2FA, step 1: the enrolment token from sign-in → a TOTP secret and otpauth:// URI' })
  begin(@Body() body: unknown) {
    return this.mfa.beginWithToken(parse(enrolmentBody, body).enrolmentToken);
  }

  @Post('mfa/enrolment/confirm')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Mandatory 2FA, step 2: the first code → recovery codes (shown once) and the tokens of the sign-in' })
  confirm(@Body() body: unknown, @Req() req: Request) {
    const input = parse(enrolmentConfirmBody, body);
    return this.mfa.confirmWithToken(input.enrolmentToken, input.code, sourceOf(req));
  }

  @Post('me/mfa/totp')
  @HttpCode(200)
  @ApiOperation({ summary: 'Enrol a TOTP authenticator (signed-in user), step 1: the secret and otpauth:// URI' })
  beginForUser(@CurrentPrincipal() principal: Principal) {
    return this.mfa.beginForUser(principal);
  }

  @Post('me/mfa/totp/confirm')
  @HttpCode(200)
  @ApiOperation({ summary: 'Step 2: the first code activates the authenticator → recovery codes (shown once)' })
  confirmForUser(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    return this.mfa.confirmForUser(principal, parse(confirmBody, body).code);
  }

  @Administers('users and roles')
  @Post('users/:userId/mfa/reset')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a user’s second factor (lost device); they enrol again at next sign-in if 2FA is mandatory (scope auth:admin)' })
  async reset(@CurrentPrincipal() admin: Principal, @Param('userId') userId: string) {
    requireScope(admin, 'auth:admin');
    await this.mfa.reset(admin, parse(userIdParam, userId));
  }
}
