import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { parse, requireScope } from '../validation';
import type { ProviderSettings } from './identity-providers.events';
import { configureProviderBody, providerIdParam } from './identity-providers.dto';
import { IdentityProvidersService } from './identity-providers.service';
import { Administers } from '../administration';

@ApiTags('identity-providers')
@Administers('identity providers')
@Controller('v1/identity-providers')
export class IdentityProvidersController {
  constructor(@Inject(IdentityProvidersService) private readonly providers: IdentityProvidersService) {}

  @Get()
  @ApiOperation({ summary: 'The tenant’s identity providers (secrets never shown: secretSet) (scope auth:admin)' })
  list(@CurrentPrincipal() admin: Principal) {
    requireScope(admin, 'auth:admin');
    return this.providers.list(admin);
  }

  @Get(':providerId')
  @ApiOperation({ summary: 'One identity provider (scope auth:admin)' })
  get(@CurrentPrincipal() admin: Principal, @Param('providerId') providerId: string) {
    requireScope(admin, 'auth:admin');
    return this.providers.get(admin, parse(providerIdParam, providerId));
  }

  @Put(':providerId')
  @ApiOperation({ summary: 'Create or change an OIDC, SAML or LDAP provider; `secret` (bind password, client secret) is write-only (scope auth:admin)' })
  configure(@CurrentPrincipal() admin: Principal, @Param('providerId') providerId: string, @Body() body: unknown) {
    requireScope(admin, 'auth:admin');
    const id = parse(providerIdParam, providerId);
    const input = parse(configureProviderBody, body);
    const settings = { type: input.type, [input.type]: (input as Record<string, unknown>)[input.type] } as ProviderSettings;
    return this.providers.configure(admin, id, { enabled: input.enabled, settings, ...(input.secret === undefined ? {} : { secret: input.secret }) });
  }

  @Delete(':providerId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove a provider; its secret is destroyed (scope auth:admin)' })
  async remove(@CurrentPrincipal() admin: Principal, @Param('providerId') providerId: string) {
    requireScope(admin, 'auth:admin');
    await this.providers.remove(admin, parse(providerIdParam, providerId));
  }
}
