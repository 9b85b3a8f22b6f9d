import { Controller, Get, Inject, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import type { Response } from 'express';
import { BILLING_SERVICES, type BillingServices } from '../billing.runtime';
import { assertBillingAccess } from '../budgets/budgets.access';
import { parse } from '../validation';
import type { Group } from './reports.repository';
import { usageQuerySchema } from './reports.dto';

/** Usage and cost reports for people (tenant admins, billing scopes); every one an audited export. */
@ApiTags('reports')
@ApiBearerAuth()
@Controller('v1/usage')
export class ReportsController {
  constructor(@Inject(BILLING_SERVICES) private readonly services: () => BillingServices) {}

  @Get()
  @ApiOperation({
    summary:
      'Usage and cost of the tenant over [from, to) by team, agent, model and day (groupBy), as JSON, CSV or FinOps FOCUS CSV (format); recorded as billing.usage.exported before it is sent',
  })
  async usage(@CurrentPrincipal() principal: Principal, @Query() query: Record<string, unknown>, @Res() res: Response) {
    assertBillingAccess(principal, 'read');
    const q = parse(usageQuerySchema, query);
    const report = await this.services().reports.usage(
      principal.tenantId,
      { type: principal.type, id: principal.id },
      { from: new Date(q.from), to: new Date(q.to), groupBy: q.groupBy as Group[], timeZone: q.timeZone, format: q.format },
    );
    res.setHeader('content-type', report.contentType);
    if (q.format !== 'json') res.setHeader('content-disposition', `attachment; filename="usage-${q.format}.csv"`);
    res.send(typeof report.body === 'string' ? report.body : JSON.stringify(report.body));
  }
}
