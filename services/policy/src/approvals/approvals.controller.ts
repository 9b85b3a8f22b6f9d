import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { SERVICE_NAMES, type Principal, type ServiceName } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { boundedObject, idSchema, nameSchema, parse, tenantIdSchema } from '../validation';
import { ApprovalsService } from './approvals.service';

const requestSchema = z.strictObject({
  action: nameSchema,
  resource: z.strictObject({ type: nameSchema, id: idSchema.optional(), tenantId: tenantIdSchema.optional() }),
  parameters: boundedObject(16 * 1024).optional(),
  /** The service that performs the action: only its decision requests redeem the token. */
  service: z.enum(SERVICE_NAMES as [ServiceName, ...ServiceName[]]),
});
const approvalIdSchema = z.string().uuid('must be an approval id');
const rejectSchema = z.strictObject({ reason: z.string().max(500).optional() });

/** Approvals of critical actions in the caller's tenant. */
@ApiTags('approvals')
@ApiBearerAuth()
@Controller('v1/approvals')
export class ApprovalsController {
  constructor(private readonly approvals: ApprovalsService) {}

  @Post()
  @ApiOperation({ summary: 'Ask for an approval of an exact action and parameters (people and agents)' })
  request(@CurrentPrincipal() p: Principal, @Body() body: unknown) {
    return this.approvals.request(p, parse(requestSchema, body));
  }

  @Get(':approvalId')
  @ApiOperation({ summary: 'An approval and its status' })
  get(@CurrentPrincipal() p: Principal, @Param('approvalId') approvalId: string) {
    return this.approvals.get(p.tenantId, parse(approvalIdSchema, approvalId, 'approvalId'));
  }

  @Post(':approvalId/approve')
  @HttpCode(200)
  @ApiOperation({ summary: 'Approve (another, authorized person): returns the one-time token, once' })
  approve(@CurrentPrincipal() p: Principal, @Param('approvalId') approvalId: string) {
    return this.approvals.approve(p, parse(approvalIdSchema, approvalId, 'approvalId'));
  }

  @Post(':approvalId/reject')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reject (another, authorized person)' })
  reject(@CurrentPrincipal() p: Principal, @Param('approvalId') approvalId: string, @Body() body: unknown) {
    return this.approvals.reject(p, parse(approvalIdSchema, approvalId, 'approvalId'), parse(rejectSchema, body ?? {}).reason);
  }
}
