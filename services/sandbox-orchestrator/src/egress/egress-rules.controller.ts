import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import type { Response } from 'express';
import { EGRESS_RULES_SERVICE, type Ready } from '../sandbox-orchestrator.tokens';
import { ifMatch, openApiSchema, parse, withEtag } from '../validation';
import { egressRulesBodySchema, egressScopeSchema } from './egress-rules.dto';
import type { EgressRulesService } from './egress-rules.service';

const IF_MATCH = { name: 'If-Match', required: false, description: 'the ETag read before (409 when the rule set changed since)' };

/**
 * The tenant's egress rule sets, by scope: `tenant`, `agent:<id>` (narrows the tenant's
 * for that agent's executions), `session:<id>` (narrows for that session's sandboxes).
 * For the tenant's policy administrators only (scope policy:admin); agents administer
 * nothing. Another tenant's rule set is a 404.
 */
@ApiTags('egress rules')
@ApiBearerAuth()
@Controller('v1/egress-rules')
export class EgressRulesController {
  constructor(@Inject(EGRESS_RULES_SERVICE) private readonly rules: Ready<Pick<EgressRulesService, 'list' | 'get' | 'set' | 'remove'>>) {}

  @Get()
  @ApiOperation({ summary: "The tenant's rule sets in force (scope policy:admin)" })
  async list(@CurrentPrincipal() principal: Principal) {
    return { items: await this.rules().list(principal) };
  }

  @Get(':scope')
  @ApiOperation({ summary: 'One rule set: tenant, agent:<id> or session:<id> (ETag = its version; scope policy:admin)' })
  async get(@CurrentPrincipal() principal: Principal, @Param('scope') scope: string, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.rules().get(principal, parse(egressScopeSchema, scope, 'scope')));
  }

  @Put(':scope')
  @ApiOperation({
    summary:
      "Replace a scope's rules: hosts (exact or *.suffix), ports, methods, path prefixes, WebSocket; the tenant's set also addresses, the upstream CA and credential injection (a vault secret id as a header, HTTP basic or a named query parameter). Applies to the next connection. Scope policy:admin.",
  })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(egressRulesBodySchema) })
  async set(@CurrentPrincipal() principal: Principal, @Param('scope') scope: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { rules } = parse(egressRulesBodySchema, body);
    return withEtag(res, await this.rules().set(principal, parse(egressScopeSchema, scope, 'scope'), rules, ifMatch(match)));
  }

  @Delete(':scope')
  @HttpCode(204)
  @ApiOperation({ summary: "Remove a scope's rule set (the tenant's: everything denied; an agent's or a session's: no narrowing). Scope policy:admin." })
  @ApiHeader(IF_MATCH)
  async remove(@CurrentPrincipal() principal: Principal, @Param('scope') scope: string, @Headers('if-match') match: string | undefined): Promise<void> {
    await this.rules().remove(principal, parse(egressScopeSchema, scope, 'scope'), ifMatch(match));
  }
}
