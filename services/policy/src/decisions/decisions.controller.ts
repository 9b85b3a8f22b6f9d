import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SERVICE_NAMES, type Principal } from '@palisade/contracts';
import { callingService, CurrentPrincipal, ServiceCallers } from '@palisade/service-kit';
import type { Request } from 'express';
import { parse } from '../validation';
import { askedByService, batchRequestSchema, decisionRequestSchema } from './decisions.dto';
import { PolicyAdministrators } from '../policyset/admin.guard';
import { DecisionService } from './decisions.service';

const REQUEST_EXAMPLE = {
  tenantId: 'acme',
  subject: { type: 'agent', id: 'helper', actingFor: 'alice' },
  action: 'read',
  resource: { type: 'document', id: 'd-1', attributes: { department: 'finance', classification: 'internal' }, fields: ['title', 'iban'] },
};

/**
 * Decisions for the other services over HTTPS with a client certificate (NATS
 * request-reply is answered by DecisionsRpc). The tenant is the caller's statement
 * about its own principal; people ask through their service, never directly. A
 * service never gets `explain` details (ignored), and redeems only approvals that name it.
 */
@ApiTags('decisions')
@Controller('v1/authorize')
export class DecisionsController {
  constructor(
    private readonly decisions: DecisionService,
    private readonly administrators: PolicyAdministrators,
  ) {}

  @Post()
  @HttpCode(200)
  @ServiceCallers(...SERVICE_NAMES)
  @ApiOperation({ summary: 'One decision: allow, deny or requires_approval, with readable/masked fields (explain is ignored: not for services)' })
  @ApiBody({ schema: { example: REQUEST_EXAMPLE } })
  @ApiOkResponse({ description: '{ decision, rule, reason, fields?, actionHash? }' })
  authorize(@Req() req: Request, @Body() body: unknown) {
    return this.decisions.authorize(askedByService(parse(decisionRequestSchema, body), callingService(req)));
  }

  @Post('batch')
  @HttpCode(200)
  @ServiceCallers(...SERVICE_NAMES)
  @ApiOperation({ summary: 'Up to 1000 decisions in one call, answered in order' })
  @ApiBody({ schema: { example: { requests: [REQUEST_EXAMPLE] } } })
  async batch(@Req() req: Request, @Body() body: unknown) {
    const caller = callingService(req);
    return { decisions: await this.decisions.authorizeBatch(parse(batchRequestSchema, body).requests.map((r) => askedByService(r, caller))) };
  }

  @Post('explain')
  @HttpCode(200)
  @ApiBearerAuth()
  @ApiOperation({ summary: "A tenant's policy administrator: the decision with the deciding rule, every matching rule and the attributes read (never redeems an approval)" })
  @ApiBody({ schema: { example: { ...REQUEST_EXAMPLE, tenantId: undefined } } })
  @ApiOkResponse({ description: '{ decision, rule, reason, fields?, actionHash?, explain }' })
  async explain(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    await this.administrators.assert(principal);
    const { approvalToken: _token, ...request } = parse(decisionRequestSchema, { ...(body as object), tenantId: principal.tenantId });
    void _token;
    return this.decisions.authorize({ ...request, explain: true });
  }
}
