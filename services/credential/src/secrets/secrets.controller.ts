import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, withEtag } from '@palisade/service-kit';
import type { Response } from 'express';
import { SecretsService } from './secrets.service';
import { ifMatch, openApiSchema, parse, uuid } from '../validation';
import { createSecretSchema, deleteSecretSchema, listSecretsSchema, revokeSecretSchema, rotateSecretSchema } from './secrets.dto';

/** Secrets of the caller's tenant. Values go in, never out: they leave only through a lease. */
@ApiTags('secrets')
@ApiBearerAuth()
@Controller('v1/secrets')
export class SecretsController {
  constructor(@Inject(SecretsService) private readonly secrets: Pick<SecretsService, 'create' | 'list' | 'get' | 'history' | 'rotate' | 'revoke' | 'shred'>) {}

  @Post()
  @ApiOperation({ summary: 'Store a secret (envelope-encrypted); answers its id and metadata, never the value. Scope credential:create.' })
  @ApiBody({ schema: openApiSchema(createSecretSchema) })
  async create(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Res({ passthrough: true }) res: Response) {
    const input = parse(createSecretSchema, body);
    return withEtag(res, await this.secrets.create(principal, { ...input, value: Buffer.from(input.value, 'utf8') }));
  }

  @Get()
  @ApiOperation({ summary: "The tenant's secrets (metadata), by id. Scope credential:read." })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: unknown, @Headers('authorization') authorization: string | undefined) {
    const page = parse(listSecretsSchema, query);
    return { items: await this.secrets.list(principal, page, authorization) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One secret (metadata, ETag = its version). Scope credential:read.' })
  async get(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.secrets.get(principal, parse(uuid, id), authorization));
  }

  @Get(':id/history')
  @ApiOperation({ summary: 'Its lifecycle events: created, rotated, revoked, … (who, when, what; never a value). Scope credential:read.' })
  async history(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Headers('authorization') authorization: string | undefined) {
    return { items: await this.secrets.history(principal, parse(uuid, id), authorization) };
  }

  @Post(':id/rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'A new version from a value or a rotator; the previous one stays for the overlap window. Scope credential:rotate.' })
  @ApiHeader({ name: 'If-Match', required: false, description: 'the ETag read before' })
  @ApiBody({ schema: openApiSchema(rotateSecretSchema) })
  async rotate(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    const input = parse(rotateSecretSchema, body);
    const view = await this.secrets.rotate(
      principal,
      parse(uuid, id),
      { value: input.value === undefined ? undefined : Buffer.from(input.value, 'utf8'), rotator: input.rotator },
      ifMatch(match),
    );
    return withEtag(res, view);
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke: no lease is granted or redeemed any more. Scope credential:revoke.' })
  @ApiHeader({ name: 'If-Match', required: false })
  @ApiBody({ schema: openApiSchema(revokeSecretSchema) })
  async revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() body: unknown, @Headers('if-match') match: string | undefined, @Res({ passthrough: true }) res: Response) {
    const { reason } = parse(revokeSecretSchema, body);
    return withEtag(res, await this.secrets.revoke(principal, parse(uuid, id), reason, ifMatch(match)));
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: "Hard delete by crypto-shredding: data keys destroyed, the tenant's KEK rotated and the old one destroyed. Scope credential:delete." })
  @ApiBody({ schema: openApiSchema(deleteSecretSchema), required: false })
  async remove(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() body: unknown) {
    const { reason } = parse(deleteSecretSchema, body);
    return this.secrets.shred(principal, parse(uuid, id), reason ?? 'deleted');
  }
}
