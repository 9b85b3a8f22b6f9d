import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Put, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, Public } from '@palisade/service-kit';
import { Administers } from '../administration';
import { ALL_AUDIENCES } from '../sessions/token-issuer';
import { ifMatchVersion, openApiSchema, parse } from '../validation';
import { agentGuideBody, agentIdParam, agentKeyIdParam, agentTokenBody, createAgentKeyBody, registerAgentBody, rotateAgentKeyBody } from './agents.dto';
import { AgentsService } from './agents.service';

/** The agent registry and agents' keys: people only (owners with agents:manage, or administrators). */
@ApiTags('agents')
@Controller('v1/agents')
@Administers('agents')
export class AgentsController {
  constructor(@Inject(AgentsService) private readonly agents: AgentsService) {}

  @Post()
  @ApiOperation({ summary: 'Register an agent (or, with parentAgentId, a subagent: one level only) owned by the caller, in a team of theirs (agents:manage; administrators may name another owner)' })
  @ApiBody({ schema: openApiSchema(registerAgentBody) })
  register(@CurrentPrincipal() caller: Principal, @Body() body: unknown) {
    return this.agents.register(caller, parse(registerAgentBody, body));
  }

  @Get()
  @ApiOperation({ summary: 'One’s own agents (administrators: the tenant’s)' })
  list(@CurrentPrincipal() caller: Principal) {
    return this.agents.list(caller);
  }

  @Get(':agentId')
  @ApiOperation({ summary: 'An agent of one’s own (administrators: of the tenant); 404 otherwise' })
  get(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string) {
    return this.agents.get(caller, parse(agentIdParam, agentId));
  }

  @Post(':agentId/suspend')
  @HttpCode(204)
  @ApiOperation({ summary: 'Suspend the agent and its subagents: their tokens are refused by every service within a second, their keys buy none' })
  async suspend(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string) {
    await this.agents.suspend(caller, parse(agentIdParam, agentId));
  }

  @Post(':agentId/resume')
  @HttpCode(204)
  @ApiOperation({ summary: 'Resume a suspended agent (its parent must be active); tokens refused before stay refused' })
  async resume(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string) {
    await this.agents.resume(caller, parse(agentIdParam, agentId));
  }

  @Post(':agentId/retire')
  @HttpCode(204)
  @ApiOperation({ summary: 'Retire the agent and its subagents for good: tokens refused everywhere within a second' })
  async retire(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string) {
    await this.agents.retire(caller, parse(agentIdParam, agentId));
  }

  @Post(':agentId/keys')
  @ApiOperation({ summary: 'A key for the agent (shown once): scopes at most the owner’s and the caller’s, never an administrative one' })
  @ApiBody({ schema: openApiSchema(createAgentKeyBody) })
  createKey(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string, @Body() body: unknown) {
    return this.agents.createKey(caller, parse(agentIdParam, agentId), parse(createAgentKeyBody, body));
  }

  @Get(':agentId/keys')
  @ApiOperation({ summary: 'The agent’s keys, with last use; never the secrets' })
  listKeys(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string) {
    return this.agents.listKeys(caller, parse(agentIdParam, agentId));
  }

  @Post(':agentId/keys/:keyId/rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'New secret for an agent key; the previous one works for overlapSec more (default 1 day, at most 7)' })
  @ApiBody({ schema: openApiSchema(rotateAgentKeyBody) })
  rotateKey(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string, @Param('keyId') keyId: string, @Body() body: unknown) {
    return this.agents.rotateKey(caller, parse(agentIdParam, agentId), parse(agentKeyIdParam, keyId), parse(rotateAgentKeyBody, body).overlapSec);
  }

  @Post(':agentId/keys/:keyId/revoke')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an agent key: the tokens it bought are refused by every service within a second' })
  async revokeKey(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string, @Param('keyId') keyId: string) {
    await this.agents.revokeKey(caller, parse(agentIdParam, agentId), parse(agentKeyIdParam, keyId));
  }
}

/** The agent guide: the tenant's written operating rules for one agent, written by people only. */
@ApiTags('agents')
@Controller('v1/agents/:agentId/guide')
@Administers('agent guides')
export class AgentGuideController {
  constructor(@Inject(AgentsService) private readonly agents: AgentsService) {}

  @Get()
  @ApiOperation({ summary: 'The agent’s guide; ETag = version (its owner or an administrator)' })
  async get(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string, @Res({ passthrough: true }) res: Response) {
    const guide = await this.agents.guide(caller, parse(agentIdParam, agentId));
    res.setHeader('etag', `"${guide.version}"`);
    return guide;
  }

  @Put()
  @ApiOperation({ summary: 'Replace the agent’s guide (at most 16 KiB); If-Match: the version read (409 if another change came first). Audited (hash and size)' })
  @ApiBody({ schema: openApiSchema(agentGuideBody) })
  async put(@CurrentPrincipal() caller: Principal, @Param('agentId') agentId: string, @Body() body: unknown, @Headers('if-match') ifMatch: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { version } = await this.agents.setGuide(caller, parse(agentIdParam, agentId), parse(agentGuideBody, body).text, ifMatchVersion(ifMatch));
    res.setHeader('etag', `"${version}"`);
    return { version };
  }
}

/** What an agent itself may do here: buy its token, read its own entry and guide. */
@ApiTags('agents')
@Controller('v1')
export class AgentSelfController {
  constructor(@Inject(AgentsService) private readonly agents: AgentsService) {}

  @Post('tokens/agent')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange an agent key for a short-lived agent token (ptp agent, act = the owner, the agent’s team, scopes ⊆ the owner’s now); 401 for any bad key or a stopped agent' })
  @ApiBody({ schema: openApiSchema(agentTokenBody) })
  exchange(@Body() body: unknown) {
    const input = parse(agentTokenBody, body);
    return this.agents.exchange(input.apiKey, input.audience?.length ? input.audience : ALL_AUDIENCES);
  }

  @Get('me/agent')
  @ApiOperation({ summary: 'The calling agent’s registry entry and guide (agents only: read, never write)' })
  self(@CurrentPrincipal() agent: Principal) {
    return this.agents.self(agent);
  }
}
