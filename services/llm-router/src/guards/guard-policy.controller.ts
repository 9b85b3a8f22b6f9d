import { Body, Controller, Get, Headers, Inject, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, ifMatch, openApiSchema, parse, withEtag } from '@palisade/service-kit';
import type { Response } from 'express';
import { GUARD_POLICY_SERVICE, type Ready } from '../llm-router.tokens';
import { guardPolicySchema } from './guard-policy.dto';
import type { GuardPolicyService } from './guard-policy.service';

/** The tenant's guard policy (PII per class and entity type, prompt injection, tool calls); people with `llm-router:admin` or `auth:admin` only. */
@ApiTags('guards')
@ApiBearerAuth()
@Controller('v1/router')
export class GuardPolicyController {
  constructor(@Inject(GUARD_POLICY_SERVICE) private readonly guards: Ready<Pick<GuardPolicyService, 'view' | 'configure'>>) {}

  @Get('guard-policy')
  @ApiOperation({ summary: "The tenant's guard policy (ETag = version); the default masks every entity, flags injections and removes calls to tools not allowed" })
  async view(@CurrentPrincipal() principal: Principal, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.guards().view(principal));
  }

  @Put('guard-policy')
  @ApiOperation({
    summary:
      'Replace the guard policy: pii.<declared class>.<entity type> = mask|block|allow (absent: mask), injection = flag|block (block refuses high-confidence findings), toolCalls = remove|refuse, review.tools = tools whose calls in an answer are held for a reviewed release, classificationRules = [{team?, agent?, model?, atLeast}] raising (never lowering) the class of the requests they match',
  })
  @ApiHeader({ name: 'If-Match', required: false, description: 'the ETag read before (409 when the policy changed since)' })
  @ApiBody({ schema: openApiSchema(guardPolicySchema) })
  async put(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.guards().configure(principal, parse(guardPolicySchema, body), ifMatch(match)));
  }
}
