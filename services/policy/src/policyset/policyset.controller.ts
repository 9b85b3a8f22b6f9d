import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { PolicyEngine } from '../engine/policy-engine';
import { parse } from '../validation';
import { nameSchema } from '../validation';
import { PolicyAdministrators } from './admin.guard';
import {
  agentIdSchema,
  assignmentsSchema,
  attributeDefinitionSchema,
  attributeNameSchema,
  criticalActionsSchema,
  roleSchema,
  subjectAttributesSchema,
  subjectParamSchema,
  toolsSchema,
} from './policyset.dto';
import { PolicySetService } from './policyset.service';
import { ifMatch } from '@palisade/service-kit';

/** Roles, assignments, attribute definitions, subject attributes, tool allowlists, critical actions of the caller's tenant. */
@ApiTags('administration')
@ApiBearerAuth()
@Controller('v1')
export class PolicySetController {
  constructor(
    private readonly admin: PolicySetService,
    private readonly administrators: PolicyAdministrators,
    private readonly engine: PolicyEngine,
  ) {}

  private async change(principal: Principal, res: Response, ifMatchHeader: string | undefined, command: Parameters<PolicySetService['changePolicySet']>[1]) {
    const expected = ifMatch(ifMatchHeader);
    await this.administrators.assert(principal);
    const { version } = await this.admin.changePolicySet(principal, command, expected);
    res.setHeader('ETag', `"${version}"`);
    return { version };
  }

  @Get('policy-set')
  @ApiOperation({ summary: "The tenant's roles, assignments, attribute definitions, allowlists and critical actions" })
  async show(@CurrentPrincipal() principal: Principal) {
    await this.administrators.assert(principal);
    const p = await this.engine.policyOf(principal.tenantId);
    return {
      roles: Object.fromEntries([...p.roles].map(([role, inherits]) => [role, { inherits }])),
      assignments: [...p.assignments].flatMap(([subject, roles]) => [...roles].map((role) => ({ subject, role }))),
      attributes: [...p.definitions.values()],
      tools: [...p.tenantTools],
      agentTools: Object.fromEntries([...p.agentTools].map(([agent, tools]) => [agent, [...tools]])),
      criticalActions: [...p.criticalActions],
      policies: Object.fromEntries([...p.policies].map(([id, d]) => [id, { version: d.version, rules: d.rules.length }])),
    };
  }

  @Put('roles/:role')
  @ApiOperation({ summary: 'Define a role and the roles it inherits' })
  defineRole(@CurrentPrincipal() p: Principal, @Param('role') role: string, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { inherits } = parse(roleSchema, body);
    return this.change(p, res, m, { type: 'defineRole', data: { role: parse(nameSchema, role, 'role'), inherits } });
  }

  @Delete('roles/:role')
  @ApiOperation({ summary: 'Remove a role no one holds or inherits' })
  removeRole(@CurrentPrincipal() p: Principal, @Param('role') role: string, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    return this.change(p, res, m, { type: 'removeRole', data: { role: parse(nameSchema, role, 'role') } });
  }

  @Post('assignments')
  @HttpCode(200)
  @ApiOperation({ summary: 'Grant roles to users, agents or services (up to 1000 at once)' })
  grant(@CurrentPrincipal() p: Principal, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    return this.change(p, res, m, { type: 'grant', data: parse(assignmentsSchema, body) });
  }

  @Post('assignments/revoke')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke role assignments' })
  revoke(@CurrentPrincipal() p: Principal, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    return this.change(p, res, m, { type: 'revoke', data: parse(assignmentsSchema, body) });
  }

  @Put('attributes/:name')
  @ApiOperation({ summary: 'Define a subject or resource attribute (levels are ordered, lowest first)' })
  defineAttribute(@CurrentPrincipal() p: Principal, @Param('name') name: string, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const d = parse(attributeDefinitionSchema, body);
    return this.change(p, res, m, { type: 'defineAttribute', data: { definition: { name: parse(attributeNameSchema, name, 'name'), ...d } } });
  }

  @Put('subjects/:subject/attributes')
  @ApiOperation({ summary: "Set a subject's attributes (department, clearance, groups …)" })
  setAttributes(@CurrentPrincipal() p: Principal, @Param('subject') subject: string, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { attributes } = parse(subjectAttributesSchema, body);
    return this.change(p, res, m, { type: 'setSubjectAttributes', data: { subject: parse(subjectParamSchema, subject, 'subject'), attributes } });
  }

  @Put('tools')
  @ApiOperation({ summary: "The tenant's tool-call allowlist" })
  tenantTools(@CurrentPrincipal() p: Principal, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    return this.change(p, res, m, { type: 'setToolAllowlist', data: parse(toolsSchema, body) });
  }

  @Put('agents/:agentId/tools')
  @ApiOperation({ summary: "An agent's tool-call allowlist" })
  agentTools(@CurrentPrincipal() p: Principal, @Param('agentId') agentId: string, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { tools } = parse(toolsSchema, body);
    return this.change(p, res, m, { type: 'setToolAllowlist', data: { agent: parse(agentIdSchema, agentId, 'agentId'), tools } });
  }

  @Put('critical-actions')
  @ApiOperation({ summary: 'Actions that need an approval (default: orders.create, payments.create, contracts.sign)' })
  critical(@CurrentPrincipal() p: Principal, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    return this.change(p, res, m, { type: 'setCriticalActions', data: parse(criticalActionsSchema, body) });
  }
}
