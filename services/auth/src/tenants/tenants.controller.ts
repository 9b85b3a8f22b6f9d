import { Body, Controller, Get, Headers, Inject, Put, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { ifMatchVersion, parse, requireScope } from '../validation';
import { mfaBody, passwordPolicyBody } from './tenants.dto';
import { TenantsService } from './tenants.service';
import { Administers } from '../administration';

@ApiTags('tenant')
@Administers('tenant settings')
@Controller('v1/tenant')
export class TenantsController {
  constructor(@Inject(TenantsService) private readonly tenants: TenantsService) {}

  @Get()
  @ApiOperation({ summary: 'The caller’s tenant and its sign-in settings; ETag = version (scope auth:admin)' })
  async get(@CurrentPrincipal() admin: Principal, @Res({ passthrough: true }) res: Response) {
    requireScope(admin, 'auth:admin');
    const tenant = await this.tenants.get(admin);
    res.setHeader('etag', `"${tenant.version}"`);
    return tenant;
  }

  @Put('password-policy')
  @ApiOperation({ summary: 'Set the password policy (length, classes, history, expiry); If-Match optional (scope auth:admin)' })
  async setPolicy(@CurrentPrincipal() admin: Principal, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Res({ passthrough: true }) res: Response) {
    requireScope(admin, 'auth:admin');
    const { version } = await this.tenants.changePasswordPolicy(admin, parse(passwordPolicyBody, body), ifMatchVersion(ifMatch));
    res.setHeader('etag', `"${version}"`);
    return { version };
  }

  @Put('mfa')
  @ApiOperation({ summary: 'Make two-factor sign-in mandatory or optional for the tenant (scope auth:admin)' })
  async setMfa(@CurrentPrincipal() admin: Principal, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Res({ passthrough: true }) res: Response) {
    requireScope(admin, 'auth:admin');
    const { version } = await this.tenants.setMfaRequirement(admin, parse(mfaBody, body).required, ifMatchVersion(ifMatch));
    res.setHeader('etag', `"${version}"`);
    return { version };
  }
}
