import { Body, Controller, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, Public } from '@palisade/service-kit';
import { ALL_AUDIENCES } from '../sessions/token-issuer';
import { audience, parse } from '../validation';
import { apiKeyBody, apiKeyIdParam, createApiKeyBody, rotateApiKeyBody } from './api-keys.dto';
import { ApiKeysService } from './api-keys.service';
import { Administers } from '../administration';

const exchangeBody = apiKeyBody.extend({ audience: audience.optional() });

@ApiTags('api-keys')
@Administers('API keys')
@Controller('v1')
export class ApiKeysController {
  constructor(@Inject(ApiKeysService) private readonly keys: ApiKeysService) {}

  @Post('api-keys')
  @ApiOperation({ summary: 'Create an API key for oneself, or (auth:admin) for a service account; scopes never beyond the caller’s. The key is shown once.' })
  create(@CurrentPrincipal() caller: Principal, @Body() body: unknown) {
    return this.keys.create(caller, parse(createApiKeyBody, body));
  }

  @Get('api-keys')
  @ApiOperation({ summary: 'One’s own API keys (administrators: the tenant’s), with last use; never the secrets' })
  list(@CurrentPrincipal() caller: Principal) {
    return this.keys.list(caller);
  }

  @Post('api-keys/:keyId/rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'New secret; the previous one works for overlapSec more (default 1 day, at most 7)' })
  rotate(@CurrentPrincipal() caller: Principal, @Param('keyId') keyId: string, @Body() body: unknown) {
    return this.keys.rotate(caller, parse(apiKeyIdParam, keyId), parse(rotateApiKeyBody, body).overlapSec);
  }

  @Post('api-keys/:keyId/revoke')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a key: refused here at once and by every service within a second' })
  async revoke(@CurrentPrincipal() caller: Principal, @Param('keyId') keyId: string) {
    await this.keys.revoke(caller, parse(apiKeyIdParam, keyId));
  }

  @Post('tokens/api-key')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange an API key for a short-lived access token with the key’s scopes (401 for any bad key)' })
  exchange(@Body() body: unknown) {
    const input = parse(exchangeBody, body);
    return this.keys.exchange(input.apiKey, input.audience?.length ? input.audience : ALL_AUDIENCES);
  }
}

