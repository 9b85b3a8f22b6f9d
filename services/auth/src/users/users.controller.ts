import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { parse, requireScope } from '../validation';
import { PLATFORM_ADMIN_SCOPE } from '../sessions/token-issuer';
import { changePasswordBody, platformAuditorBody, registerUserBody, setRolesBody, userIdParam } from './users.dto';
import { UsersService } from './users.service';
import { Administers } from '../administration';

@ApiTags('users')
@Administers('users and roles')
@Controller('v1')
export class UsersController {
  constructor(@Inject(UsersService) private readonly users: UsersService) {}

  @Post('users')
  @ApiOperation({ summary: 'Register a local user in the caller’s tenant (scope auth:admin)' })
  register(@CurrentPrincipal() admin: Principal, @Body() body: unknown) {
    requireScope(admin, 'auth:admin');
    return this.users.register(admin.tenantId, { type: admin.type, id: admin.id }, parse(registerUserBody, body));
  }

  @Get('users')
  @ApiOperation({ summary: 'Users of the caller’s tenant (scope auth:admin)' })
  list(@CurrentPrincipal() admin: Principal) {
    requireScope(admin, 'auth:admin');
    return this.users.list(admin);
  }

  @Post('users/:userId/revoke-sessions')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke every session and token of a user, enforced by every service within a second (scope auth:admin)' })
  async revokeSessions(@CurrentPrincipal() admin: Principal, @Param('userId') userId: string) {
    requireScope(admin, 'auth:admin');
    await this.users.revokeAllSessions(admin, parse(userIdParam, userId));
  }

  @Post('users/:userId/disable')
  @HttpCode(204)
  @ApiOperation({ summary: 'Disable a user and revoke their tokens (scope auth:admin)' })
  async disable(@CurrentPrincipal() admin: Principal, @Param('userId') userId: string) {
    requireScope(admin, 'auth:admin');
    await this.users.disable(admin, parse(userIdParam, userId));
  }

  @Put('users/:userId/roles')
  @HttpCode(204)
  @ApiOperation({ summary: 'Set the tenant roles of a user (admin, auditor, member; scope auth:admin); taking a role away ends their sessions at once' })
  async setRoles(@CurrentPrincipal() admin: Principal, @Param('userId') userId: string, @Body() body: unknown) {
    requireScope(admin, 'auth:admin');
    await this.users.setRoles(admin, parse(userIdParam, userId), parse(setRolesBody, body).roles);
  }

  @Put('users/:userId/platform-auditor')
  @HttpCode(204)
  @ApiOperation({ summary: 'Grant or withdraw the platform auditor role (audit:read:all) to a user of the operator’s own tenant (scope platform:admin)' })
  async setPlatformAuditor(@CurrentPrincipal() operator: Principal, @Param('userId') userId: string, @Body() body: unknown) {
    requireScope(operator, PLATFORM_ADMIN_SCOPE);
    await this.users.setPlatformAuditor(operator, parse(userIdParam, userId), parse(platformAuditorBody, body).granted);
  }

  @Post('me/password')
  @HttpCode(204)
  @ApiOperation({ summary: 'Change one’s own password under the tenant’s policy (length, classes, history); the current password counts in the lockout (401 wrong, 429 locked out); the user’s other sessions end' })
  async changePassword(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Req() req: Request) {
    const input = parse(changePasswordBody, body);
    await this.users.changeOwnPassword(principal, input.currentPassword, input.newPassword, req.socket.remoteAddress ?? 'unknown');
  }
}
