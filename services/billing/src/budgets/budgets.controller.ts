import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { BILLING_SERVICES, type BillingServices } from '../billing.runtime';
import { openApiSchema, parse } from '../validation';
import { assertBillingAccess } from './budgets.access';
import { levelSchema, setBudgetSchema, subjectSchema } from './budgets.dto';

/** Budgets for people: set, remove, status per level; an agent reads its own remaining. */
@ApiTags('budgets')
@ApiBearerAuth()
@Controller('v1/budgets')
export class BudgetsController {
  constructor(@Inject(BILLING_SERVICES) private readonly services: () => BillingServices) {}

  @Get('me')
  @ApiOperation({ summary: "An agent's own remaining budget: the least over its hard levels (tenant, team, the user it acts for, itself), and each level's status" })
  me(@CurrentPrincipal() principal: Principal) {
    if (principal.type !== 'agent') throw new PalisadeError('forbidden', 'only an agent has a budget of its own here');
    return this.services().ledger.remaining(principal.tenantId, principal.id, principal.department ?? principal.teams?.[0] ?? null, principal.actingFor ?? null);
  }

  @Get()
  @ApiOperation({ summary: 'Status of every budget of the tenant: limit, posted, pending, remaining, period start, resets at (auth:admin, billing:admin or billing:read)' })
  all(@CurrentPrincipal() principal: Principal) {
    assertBillingAccess(principal, 'read');
    return this.services().ledger.status(principal.tenantId);
  }

  @Get(':level/:subjectId')
  @ApiOperation({ summary: 'Status of one budget (404 when there is none in the caller tenant)' })
  async one(@CurrentPrincipal() principal: Principal, @Param('level') level: string, @Param('subjectId') subjectId: string) {
    assertBillingAccess(principal, 'read');
    const l = parse(levelSchema, level);
    const [status] = await this.services().ledger.status(principal.tenantId, { level: l, subjectId: l === 'tenant' ? principal.tenantId : parse(subjectSchema, subjectId) });
    if (!status) throw new PalisadeError('not_found', 'budget not found');
    return status;
  }

  @Put(':level/:subjectId')
  @ApiOperation({ summary: 'Set the budget of the tenant, a team or an agent: limit (µ-units), period (month, day in the time zone, or none), hard or soft, thresholds (auth:admin or billing:admin)' })
  @ApiBody({ schema: openApiSchema(setBudgetSchema) })
  set(@CurrentPrincipal() principal: Principal, @Param('level') level: string, @Param('subjectId') subjectId: string, @Body() body: unknown) {
    assertBillingAccess(principal, 'admin');
    const input = parse(setBudgetSchema, body);
    return this.services().budgets.set(principal.tenantId, { type: principal.type, id: principal.id }, { ...input, level: parse(levelSchema, level), subjectId: parse(subjectSchema, subjectId) });
  }

  @Delete(':level/:subjectId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a budget (its periods stay in the ledger)' })
  async remove(@CurrentPrincipal() principal: Principal, @Param('level') level: string, @Param('subjectId') subjectId: string) {
    assertBillingAccess(principal, 'admin');
    await this.services().budgets.remove(principal.tenantId, { type: principal.type, id: principal.id }, parse(levelSchema, level), parse(subjectSchema, subjectId));
  }
}
