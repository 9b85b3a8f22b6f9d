import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentCaller } from '../caller';
import { SESSIONS_SERVICE, type Ready } from '../sandbox-orchestrator.tokens';
import { ifMatch, openApiSchema, parse, withEtag } from '../validation';
import { createSessionSchema, listSessionsSchema, principalIdSchema, sessionIdSchema, shareSchema } from './sessions.dto';
import type { Caller, SessionsService } from './sessions.service';

const IF_MATCH = { name: 'If-Match', required: false, description: 'the ETag read before (409 when the session changed since)' };

/**
 * Agent work sessions of the caller's tenant. Every route asks the policy service (session
 * roles: owner, collaborator, viewer; agents ∩ their user); a session the caller may not
 * read is a 404, whether it is another tenant's or simply not shared with them.
 */
@ApiTags('sessions')
@ApiBearerAuth()
@Controller('v1/sessions')
export class SessionsController {
  constructor(@Inject(SESSIONS_SERVICE) private readonly sessions: Ready<Pick<SessionsService, 'create' | 'get' | 'list' | 'share' | 'unshare' | 'join' | 'leave' | 'archive'>>) {}

  @Post()
  @ApiOperation({ summary: 'Open a session owned by the caller (people only)' })
  @ApiBody({ schema: openApiSchema(createSessionSchema), required: false })
  async create(@CurrentCaller() caller: Caller, @Body() body: unknown, @Res({ passthrough: true }) res: Response) {
    parse(createSessionSchema, body);
    return withEtag(res, await this.sessions().create(caller));
  }

  @Get()
  @ApiOperation({ summary: 'Sessions the caller owns, is shared with, or (an agent) works in, newest first' })
  async list(@CurrentCaller() caller: Caller, @Query() query: unknown) {
    return { items: await this.sessions().list(caller, parse(listSessionsSchema, query, 'query')) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One session (ETag = its version): owner, collaborators, viewers, agents. Needs read.' })
  async get(@CurrentCaller() caller: Caller, @Param('id') id: string, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sessions().get(caller, parse(sessionIdSchema, id, 'id')));
  }

  @Put(':id/members/:userId')
  @ApiOperation({ summary: 'Share with a person as collaborator (read/write) or viewer (read), or change their role. Needs share (owner).' })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(shareSchema) })
  async share(
    @CurrentCaller() caller: Caller,
    @Param('id') id: string,
    @Param('userId') userId: string,
    @Body() body: unknown,
    @Headers('if-match') match: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ) {
    const { role } = parse(shareSchema, body);
    return withEtag(res, await this.sessions().share(caller, parse(sessionIdSchema, id, 'id'), parse(principalIdSchema, userId, 'userId'), role, ifMatch(match)));
  }

  @Delete(':id/members/:userId')
  @HttpCode(200)
  @ApiOperation({ summary: 'Stop sharing with a person. Needs share (owner).' })
  @ApiHeader(IF_MATCH)
  async unshare(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('userId') userId: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sessions().unshare(caller, parse(sessionIdSchema, id, 'id'), parse(principalIdSchema, userId, 'userId'), ifMatch(match)));
  }

  @Put(':id/agents/:agentId')
  @ApiOperation({ summary: 'An agent joins the session (it then acts there within its user’s role). Needs write (owner, collaborator).' })
  @ApiHeader(IF_MATCH)
  async join(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('agentId') agentId: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sessions().join(caller, parse(sessionIdSchema, id, 'id'), parse(principalIdSchema, agentId, 'agentId'), ifMatch(match)));
  }

  @Delete(':id/agents/:agentId')
  @HttpCode(200)
  @ApiOperation({ summary: 'An agent leaves the session. Needs write (owner, collaborator).' })
  @ApiHeader(IF_MATCH)
  async leave(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('agentId') agentId: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sessions().leave(caller, parse(sessionIdSchema, id, 'id'), parse(principalIdSchema, agentId, 'agentId'), ifMatch(match)));
  }

  @Post(':id/archive')
  @HttpCode(200)
  @ApiOperation({ summary: 'Archive: read-only from now on. Needs archive (owner only).' })
  @ApiHeader(IF_MATCH)
  async archive(@CurrentCaller() caller: Caller, @Param('id') id: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sessions().archive(caller, parse(sessionIdSchema, id, 'id'), ifMatch(match)));
  }
}
