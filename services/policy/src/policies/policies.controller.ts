import { Body, Controller, Delete, Get, Headers, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { PolicyAdministrators } from '../policyset/admin.guard';
import { policyDocumentSchema, rollbackSchema } from '../policyset/policyset.dto';
import { PolicySetService } from '../policyset/policyset.service';
import { ifMatch } from '@palisade/service-kit';
import { nameSchema, parse } from '../validation';

/** Versioned policy documents (rule sets) of the caller's tenant; ETag = version. */
@ApiTags('administration')
@ApiBearerAuth()
@Controller('v1/policies')
export class PoliciesController {
  constructor(
    private readonly admin: PolicySetService,
    private readonly administrators: PolicyAdministrators,
  ) {}

  @Get(':policyId')
  @ApiOperation({ summary: 'The current rules of a policy and its version (ETag)' })
  async get(@CurrentPrincipal() p: Principal, @Param('policyId') policyId: string, @Res({ passthrough: true }) res: Response) {
    await this.administrators.assert(p);
    const doc = await this.admin.document(p.tenantId, parse(nameSchema, policyId, 'policyId'));
    res.setHeader('ETag', `"${doc.version}"`);
    return doc;
  }

  @Put(':policyId')
  @ApiOperation({ summary: 'Publish a new version of a policy (If-Match: the version it replaces)' })
  async publish(@CurrentPrincipal() p: Principal, @Param('policyId') policyId: string, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const id = parse(nameSchema, policyId, 'policyId');
    const { rules } = parse(policyDocumentSchema, body);
    const expected = ifMatch(m);
    await this.administrators.assert(p);
    const out = await this.admin.publish(p, id, rules, expected);
    res.setHeader('ETag', `"${out.version}"`);
    return out;
  }

  @Post(':policyId/rollback')
  @HttpCode(200)
  @ApiOperation({ summary: 'Roll back to an earlier version (recorded as a new version)' })
  async rollback(@CurrentPrincipal() p: Principal, @Param('policyId') policyId: string, @Body() body: unknown, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const id = parse(nameSchema, policyId, 'policyId');
    const { toVersion } = parse(rollbackSchema, body);
    const expected = ifMatch(m);
    await this.administrators.assert(p);
    const out = await this.admin.rollback(p, id, toVersion, expected);
    res.setHeader('ETag', `"${out.version}"`);
    return out;
  }

  @Delete(':policyId')
  @ApiOperation({ summary: 'Withdraw a policy (its rules stop applying; it can be rolled back)' })
  async withdraw(@CurrentPrincipal() p: Principal, @Param('policyId') policyId: string, @Headers('if-match') m: string | undefined, @Res({ passthrough: true }) res: Response) {
    const id = parse(nameSchema, policyId, 'policyId');
    const expected = ifMatch(m);
    await this.administrators.assert(p);
    const out = await this.admin.withdraw(p, id, expected);
    res.setHeader('ETag', `"${out.version}"`);
    return out;
  }
}
