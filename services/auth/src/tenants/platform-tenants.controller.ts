import { Body, Controller, Get, Inject, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { PLATFORM_ADMIN_SCOPE } from '../sessions/token-issuer';
import { parse, requireScope } from '../validation';
import { TenantProvisioning } from './tenant-provisioning';
import { provisionTenantBody } from './tenants.dto';
import { TenantsService } from './tenants.service';
import { Administers } from '../administration';

/** Tenants seen by a platform operator (scope platform:admin), across tenants by design. */
@ApiTags('platform')
@Administers('tenants')
@Controller('v1/tenants')
export class PlatformTenantsController {
  constructor(
    @Inject(TenantsService) private readonly tenants: TenantsService,
    @Inject(TenantProvisioning) private readonly provisioning: TenantProvisioning,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create a tenant and its first administrator; 409 if it exists (scope platform:admin)' })
  create(@CurrentPrincipal() operator: Principal, @Body() body: unknown) {
    requireScope(operator, PLATFORM_ADMIN_SCOPE);
    return this.provisioning.provision({ type: operator.type, id: operator.id }, parse(provisionTenantBody, body), ['admin']);
  }

  @Get()
  @ApiOperation({ summary: 'Every tenant: ids and names (scope platform:admin)' })
  list(@CurrentPrincipal() operator: Principal) {
    requireScope(operator, PLATFORM_ADMIN_SCOPE);
    return this.tenants.list();
  }
}
