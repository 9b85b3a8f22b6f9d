import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import type { Response } from 'express';
import { TENANT_QUOTAS_SERVICE, type Ready } from '../sandbox-orchestrator.tokens';
import { ifMatch, openApiSchema, parse, withEtag } from '../validation';
import { tenantIdSchema, tenantQuotasBodySchema } from './tenant-quotas.dto';
import type { TenantQuotasService } from './tenant-quotas.service';

const IF_MATCH = { name: 'If-Match', required: false, description: 'the ETag read before (409 when the quotas changed since; "0": only if the tenant has set none yet)' };

/** A tenant's own sandbox quotas, each at most the platform's. The tenant's administrators only (scope policy:admin); agents never; another tenant's: 404. */
@ApiTags('sandbox quotas')
@ApiBearerAuth()
@Controller('v1/sandbox-quotas')
export class TenantQuotasController {
  constructor(@Inject(TENANT_QUOTAS_SERVICE) private readonly quotas: Ready<Pick<TenantQuotasService, 'get' | 'set' | 'remove'>>) {}

  @Get(':tenantId')
  @ApiOperation({ summary: "The tenant's sandbox quotas in force (its own or the platform's), the platform's, the CPU window; ETag = version. Scope policy:admin." })
  async get(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.quotas().get(principal, parse(tenantIdSchema, tenantId, 'tenantId')));
  }

  @Put(':tenantId')
  @ApiOperation({ summary: 'Set the tenant’s quotas: ready sandboxes at once, CPU-seconds per window; each at most the platform’s. Applies to the next creation and execution. Scope policy:admin.' })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(tenantQuotasBodySchema) })
  async set(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.quotas().set(principal, parse(tenantIdSchema, tenantId, 'tenantId'), parse(tenantQuotasBodySchema, body), ifMatch(match)));
  }

  @Delete(':tenantId')
  @HttpCode(204)
  @ApiOperation({ summary: "Remove the tenant's quotas: the platform's apply. Scope policy:admin." })
  @ApiHeader(IF_MATCH)
  async remove(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string, @Headers('if-match') match: string | undefined): Promise<void> {
    await this.quotas().remove(principal, parse(tenantIdSchema, tenantId, 'tenantId'), ifMatch(match));
  }
}
