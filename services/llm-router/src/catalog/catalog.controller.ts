import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Put, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, ifMatch, openApiSchema, parse, withEtag } from '@palisade/service-kit';
import type { Response } from 'express';
import { CATALOG_SERVICE, type Ready } from '../llm-router.tokens';
import { catalogIdSchema, modelSchema, providerSchema, routeSchema, settingsSchema } from './catalog.dto';
import type { CatalogService } from './catalog.service';

const IF_MATCH = { name: 'If-Match', required: false, description: 'the ETag read before (409 when the catalog changed since)' };

/** The tenant's providers, models and routes; people with `llm-router:admin` or the tenant admin's `auth:admin` only. Provider keys are references to the credential service's secrets, never keys. */
@ApiTags('catalog')
@ApiBearerAuth()
@Controller('v1/router')
export class CatalogController {
  constructor(@Inject(CATALOG_SERVICE) private readonly catalog: Ready<Pick<CatalogService, 'view' | 'registerProvider' | 'removeProvider' | 'registerModel' | 'removeModel' | 'configureRoute' | 'removeRoute' | 'configureSettings'>>) {}

  @Get('catalog')
  @ApiOperation({ summary: "The tenant's providers, models and routes (ETag = version)" })
  async view(@CurrentPrincipal() principal: Principal, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.catalog().view(principal));
  }

  @Put('providers/:id')
  @ApiOperation({ summary: 'Register or replace a provider (kind, base URL, compliance class private/external, key as a vault secret id)' })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(providerSchema) })
  async putProvider(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    const p = parse(providerSchema, body);
    return withEtag(res, await this.catalog().registerProvider(principal, { providerId: parse(catalogIdSchema, id, 'id'), ...p }, ifMatch(match)));
  }

  @Delete('providers/:id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Remove a provider no model uses' })
  @ApiHeader(IF_MATCH)
  async deleteProvider(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.catalog().removeProvider(principal, parse(catalogIdSchema, id, 'id'), ifMatch(match)));
  }

  @Put('models/:id')
  @ApiOperation({ summary: 'Register or replace a model (provider, upstream name, context window, output limit, prices in micro-USD per million tokens)' })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(modelSchema) })
  async putModel(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    const m = parse(modelSchema, body);
    return withEtag(res, await this.catalog().registerModel(principal, { modelId: parse(catalogIdSchema, id, 'id'), ...m }, ifMatch(match)));
  }

  @Delete('models/:id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Remove a model no route uses' })
  @ApiHeader(IF_MATCH)
  async deleteModel(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.catalog().removeModel(principal, parse(catalogIdSchema, id, 'id'), ifMatch(match)));
  }

  @Put('routes/:id')
  @ApiOperation({ summary: 'Configure a route: ordered candidate models (fallbacks never to a lower compliance class or a smaller context window)' })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(routeSchema) })
  async putRoute(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    const r = parse(routeSchema, body);
    return withEtag(res, await this.catalog().configureRoute(principal, { routeId: parse(catalogIdSchema, id, 'id'), candidates: r.candidates, ...(r.weights ? { weights: r.weights } : {}) }, ifMatch(match)));
  }

  @Put('settings')
  @ApiOperation({ summary: 'Router settings of the tenant: zeroRetention (no prompt or response text kept anywhere, audit events included)' })
  @ApiHeader(IF_MATCH)
  @ApiBody({ schema: openApiSchema(settingsSchema) })
  async putSettings(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.catalog().configureSettings(principal, parse(settingsSchema, body), ifMatch(match)));
  }

  @Delete('routes/:id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Remove a route' })
  @ApiHeader(IF_MATCH)
  async deleteRoute(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.catalog().removeRoute(principal, parse(catalogIdSchema, id, 'id'), ifMatch(match)));
  }
}
