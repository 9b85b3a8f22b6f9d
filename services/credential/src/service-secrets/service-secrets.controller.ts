import { Body, Controller, Delete, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { callingService, ServiceCallers } from '@palisade/service-kit';
import type { Request } from 'express';
import { SERVICE_SECRETS_SERVICE, type Ready } from '../credential.tokens';
import { openApiSchema, parse } from '../validation';
import { putServiceSecretSchema, readServiceSecretSchema, serviceSecretId, serviceSecretName, tenantIdParam } from './service-secrets.dto';
import type { ServiceSecretsService } from './service-secrets.service';

/**
 * Secrets Palisade services keep for themselves (auth: identity-provider client secrets
 * and bind passwords). mTLS only: the client certificate names the caller; a secret
 * outside the caller's scope (`auth:idp`) or of another tenant is a 404.
 */
@ApiTags('service-secrets')
@Controller('internal/v1/tenants/:tenantId/service-secrets')
@ServiceCallers('auth')
export class ServiceSecretsController {
  constructor(@Inject(SERVICE_SECRETS_SERVICE) private readonly serviceSecrets: Ready<Pick<ServiceSecretsService, 'put' | 'read' | 'delete'>>) {}

  @Put(':name')
  @ApiOperation({ summary: 'Service-to-service only (mTLS, auth): create the named secret (scope auth:idp) or rotate it. Answers {secretId, version}, never the value.' })
  @ApiBody({ schema: openApiSchema(putServiceSecretSchema) })
  put(@Req() req: Request, @Param('tenantId') tenantId: string, @Param('name') name: string, @Body() body: unknown) {
    const tenant = parse(tenantIdParam, tenantId);
    const secretName = parse(serviceSecretName, name);
    const { value } = parse(putServiceSecretSchema, body);
    return this.serviceSecrets().put(callingService(req)!, tenant, secretName, Buffer.from(value, 'utf8'));
  }

  @Post(':secretId/read')
  @HttpCode(200)
  @ApiOperation({ summary: 'Service-to-service only (mTLS, auth): the current value; credential.secret.read (consumer, purpose) commits first.' })
  @ApiBody({ schema: openApiSchema(readServiceSecretSchema) })
  read(@Req() req: Request, @Param('tenantId') tenantId: string, @Param('secretId') secretId: string, @Body() body: unknown) {
    const tenant = parse(tenantIdParam, tenantId);
    const id = parse(serviceSecretId, secretId);
    const { purpose } = parse(readServiceSecretSchema, body);
    return this.serviceSecrets().read(callingService(req)!, tenant, id, purpose);
  }

  @Delete(':secretId')
  @ApiOperation({ summary: 'Service-to-service only (mTLS, auth): crypto-shred the secret (e.g. its identity provider was removed).' })
  remove(@Req() req: Request, @Param('tenantId') tenantId: string, @Param('secretId') secretId: string) {
    return this.serviceSecrets().delete(callingService(req)!, parse(tenantIdParam, tenantId), parse(serviceSecretId, secretId));
  }
}
