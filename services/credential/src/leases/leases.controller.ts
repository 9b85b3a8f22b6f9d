import { Body, Controller, Headers, HttpCode, Inject, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { callingService, CurrentPrincipal, ServiceCallers } from '@palisade/service-kit';
import type { Request } from 'express';
import { openApiSchema, parse } from '../validation';
import { grantLeaseSchema, redeemLeaseSchema } from './leases.dto';
import { LeasesService } from './leases.service';

/** Just-in-time leases: an agent sees a short-lived token; the value goes to the tool runner only. */
@ApiTags('leases')
@Controller()
export class LeasesController {
  constructor(@Inject(LeasesService) private readonly leases: Pick<LeasesService, 'grant' | 'redeem'>) {}

  @Post('v1/leases')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'A lease (at most 60 s, single use by default) bound to tenant, sandbox session, tool and secret. Scope credential:use; the tool must be within the secret scopes.',
  })
  @ApiBody({ schema: openApiSchema(grantLeaseSchema) })
  grant(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('authorization') authorization: string | undefined) {
    // the agent's token goes to the policy service with the decision, nowhere else
    return this.leases.grant(principal, parse(grantLeaseSchema, body), authorization);
  }

  @Post('internal/v1/leases/redeem')
  @HttpCode(200)
  @ServiceCallers('sandbox-orchestrator')
  @ApiOperation({
    summary: 'Service-to-service only (mTLS, sandbox-orchestrator: egress proxy / tool runner): redeem a lease for the value. The read is recorded in the same transaction.',
  })
  @ApiBody({ schema: openApiSchema(redeemLeaseSchema) })
  redeem(@Req() req: Request, @Body() body: unknown) {
    return this.leases.redeem(callingService(req)!, parse(redeemLeaseSchema, body));
  }
}
