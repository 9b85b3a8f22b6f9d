import { Body, Controller, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { subjectOf } from '@palisade/policy-client';
import { CurrentPrincipal, openApiSchema, parse } from '@palisade/service-kit';
import type { Request } from 'express';
import { z } from 'zod';
import { HELD_ANSWERS_SERVICE, type Ready } from '../llm-router.tokens';
import type { HeldAnswersService } from './held-answers.service';

const heldIdSchema = z.string().uuid('must be a held answer id');
export const releaseSchema = z.strictObject({ approvalToken: z.string().max(200).optional(), releaseKey: z.string().max(100).optional() });

/** Answers held for review (guard policy `review.tools`): released to their caller once a person approved. */
@ApiTags('guards')
@ApiBearerAuth()
@Controller('v1/router/held')
export class HeldAnswersController {
  constructor(@Inject(HELD_ANSWERS_SERVICE) private readonly held: Ready<Pick<HeldAnswersService, 'release'>>) {}

  @Post(':heldId/release')
  @HttpCode(200)
  @ApiOperation({
    summary:
      "The held answer, in the API it was asked in, once: the caller that asked only (anyone else 404); approvalToken = the policy service's one-time token of the approval named in the 409 review_required, releaseKey = the key given there (absent token: 409, still waiting; wrong key or token not redeemed: 403; released or expired: 404)",
  })
  @ApiBody({ schema: openApiSchema(releaseSchema) })
  async release(@CurrentPrincipal() principal: Principal, @Param('heldId') heldId: string, @Body() body: unknown, @Req() req: Request) {
    const { approvalToken, releaseKey } = parse(releaseSchema, body ?? {});
    const { token } = subjectOf(principal, req.header('authorization'));
    return (await this.held().release(principal, token, parse(heldIdSchema, heldId, 'heldId'), approvalToken, releaseKey)).body;
  }
}
