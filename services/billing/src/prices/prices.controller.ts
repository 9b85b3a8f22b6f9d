import { Body, Controller, Get, Inject, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { BILLING_SERVICES, type BillingServices } from '../billing.runtime';
import { assertBillingAccess } from '../budgets/budgets.access';
import { openApiSchema, parse } from '../validation';
import { publishPriceTableSchema } from './prices.dto';
import { PLATFORM_SCOPE } from './prices.service';

/** Price tables: the tenant's (tenant admins, billing:admin) and the platform default (platform:admin). */
@ApiTags('prices')
@ApiBearerAuth()
@Controller('v1/price-tables')
export class PricesController {
  constructor(@Inject(BILLING_SERVICES) private readonly services: () => BillingServices) {}

  @Put()
  @ApiOperation({ summary: "Publish the next version of the tenant's price table, effective from a date (default now)" })
  @ApiBody({ schema: openApiSchema(publishPriceTableSchema) })
  publish(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    assertBillingAccess(principal, 'admin');
    return this.services().prices.publish(principal.tenantId, { type: principal.type, id: principal.id }, parse(publishPriceTableSchema, body));
  }

  @Put('platform')
  @ApiOperation({ summary: 'Publish the next version of the platform default price table (platform:admin)' })
  @ApiBody({ schema: openApiSchema(publishPriceTableSchema) })
  publishPlatform(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    if (!(principal.scopes ?? []).includes('platform:admin')) throw new PalisadeError('forbidden', 'the token lacks the scope platform:admin');
    return this.services().prices.publish(PLATFORM_SCOPE, { type: principal.type, id: principal.id }, parse(publishPriceTableSchema, body));
  }

  @Get('effective')
  @ApiOperation({ summary: "The price table in force for the caller's tenant at `at` (default now): its own, else the platform's" })
  async effective(@CurrentPrincipal() principal: Principal, @Query('at') at?: string) {
    assertBillingAccess(principal, 'read');
    const when = at === undefined ? undefined : new Date(at);
    if (when && Number.isNaN(when.getTime())) throw new PalisadeError('validation', 'at: must be an ISO 8601 instant');
    const t = await this.services().prices.effective(principal.tenantId, when);
    return { scope: t.scope === PLATFORM_SCOPE ? 'platform' : 'tenant', version: t.version, effectiveFrom: t.effectiveFrom.toISOString(), currency: t.currency, entries: t.entries };
  }
}
