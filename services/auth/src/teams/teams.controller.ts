import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Put, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { Administers } from '../administration';
import { ifMatchVersion, openApiSchema, parse, requireScope } from '../validation';
import { createTeamBody, memberIdParam, renameTeamBody, teamIdParam } from './teams.dto';
import { TeamsService } from './teams.service';

/** Teams (departments) of the caller's tenant: people read them, administrators change them. */
@ApiTags('teams')
@Controller('v1/teams')
@Administers('teams')
export class TeamsController {
  constructor(@Inject(TeamsService) private readonly teams: TeamsService) {}

  @Post()
  @ApiOperation({ summary: 'Create a team (scope auth:admin); its id is what tokens (teams, dept) and ABAC rules use' })
  @ApiBody({ schema: openApiSchema(createTeamBody) })
  create(@CurrentPrincipal() admin: Principal, @Body() body: unknown) {
    requireScope(admin, 'auth:admin');
    return this.teams.create(admin, parse(createTeamBody, body));
  }

  @Get()
  @ApiOperation({ summary: 'Teams of the caller’s tenant' })
  list(@CurrentPrincipal() caller: Principal) {
    return this.teams.list(caller);
  }

  @Get(':teamId')
  @ApiOperation({ summary: 'A team and its members (user ids); ETag = version' })
  async get(@CurrentPrincipal() caller: Principal, @Param('teamId') teamId: string, @Res({ passthrough: true }) res: Response) {
    const team = await this.teams.get(caller, parse(teamIdParam, teamId));
    res.setHeader('etag', `"${team.version}"`);
    return team;
  }

  @Put(':teamId')
  @ApiOperation({ summary: 'Rename a team; If-Match optional (scope auth:admin)' })
  @ApiBody({ schema: openApiSchema(renameTeamBody) })
  async rename(@CurrentPrincipal() admin: Principal, @Param('teamId') teamId: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Res({ passthrough: true }) res: Response) {
    requireScope(admin, 'auth:admin');
    const renamed = await this.teams.rename(admin, parse(teamIdParam, teamId), parse(renameTeamBody, body).name, ifMatchVersion(ifMatch));
    res.setHeader('etag', `"${renamed.version}"`);
    return renamed;
  }

  @Post(':teamId/archive')
  @HttpCode(204)
  @ApiOperation({ summary: 'Archive a team for good (scope auth:admin); refused (409) while agents not retired are in it' })
  async archive(@CurrentPrincipal() admin: Principal, @Param('teamId') teamId: string) {
    requireScope(admin, 'auth:admin');
    await this.teams.archive(admin, parse(teamIdParam, teamId));
  }

  @Put(':teamId/members/:userId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Add a user of the tenant to the team (scope auth:admin); a user may be in several teams, the first joined is their department' })
  async addMember(@CurrentPrincipal() admin: Principal, @Param('teamId') teamId: string, @Param('userId') userId: string) {
    requireScope(admin, 'auth:admin');
    await this.teams.addMember(admin, parse(teamIdParam, teamId), parse(memberIdParam, userId));
  }

  @Delete(':teamId/members/:userId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a user from the team (scope auth:admin); their access tokens are refused within a second, the next refresh carries the new teams' })
  async removeMember(@CurrentPrincipal() admin: Principal, @Param('teamId') teamId: string, @Param('userId') userId: string) {
    requireScope(admin, 'auth:admin');
    await this.teams.removeMember(admin, parse(teamIdParam, teamId), parse(memberIdParam, userId));
  }
}
