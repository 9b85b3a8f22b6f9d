import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { KeyringService, type ByokInput } from './keyring.service';
import { openApiSchema, parse } from '../validation';
import { cipherSchema, keyVersionSchema, provisionKeyringSchema, revokeKeySchema, rotateKeyringSchema } from './keyring.dto';

const byokOf = (b: { material: string } | { keyRef: string } | undefined): ByokInput | undefined =>
  b === undefined ? undefined : 'material' in b ? { material: Buffer.from(b.material, 'base64') } : { keyRef: b.keyRef };

/** The tenant's key ring: key-encryption key versions (provider, origin, state) and cipher. */
@ApiTags('keys')
@ApiBearerAuth()
@Controller('v1/keys')
export class KeyringController {
  constructor(@Inject(KeyringService) private readonly keyring: Pick<KeyringService, 'view' | 'provision' | 'rotate' | 'revokeKey' | 'setCipher'>) {}

  @Get()
  @ApiOperation({ summary: 'The key ring (never key material). Scope credential:read.' })
  get(@CurrentPrincipal() principal: Principal, @Headers('authorization') authorization: string | undefined) {
    return this.keyring.view(principal, authorization);
  }

  @Post()
  @ApiOperation({ summary: 'Create the key ring: a generated KEK, or BYOK (import material, or reference a KMS key you control). Scope credential:manage_keys.' })
  @ApiBody({ schema: openApiSchema(provisionKeyringSchema) })
  provision(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const input = parse(provisionKeyringSchema, body);
    return this.keyring.provision(principal, { provider: input.provider, cipher: input.cipher, byok: byokOf(input.byok) });
  }

  @Post('rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'New KEK version; data keys re-wrapped, ciphertexts untouched; the old KEK retired. Scope credential:manage_keys.' })
  @ApiBody({ schema: openApiSchema(rotateKeyringSchema) })
  rotate(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const input = parse(rotateKeyringSchema, body);
    return this.keyring.rotate(principal, { provider: input.provider, byok: byokOf(input.byok), reason: input.reason });
  }

  @Post('versions/:version/revoke')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke a KEK version: everything under it is unreadable at once. Scope credential:manage_keys.' })
  @ApiBody({ schema: openApiSchema(revokeKeySchema) })
  revoke(@CurrentPrincipal() principal: Principal, @Param('version') version: string, @Body() body: unknown) {
    return this.keyring.revokeKey(principal, { version: parse(keyVersionSchema, version), reason: parse(revokeKeySchema, body).reason });
  }

  @Put('cipher')
  @ApiOperation({ summary: "Cipher of the tenant's new secret versions (aes-256-gcm, or sm4: SM4-CTR + HMAC-SM3, encrypt-then-MAC; sm4 needs a local-provider KEK, 400 otherwise). Scope credential:manage_keys." })
  @ApiBody({ schema: openApiSchema(cipherSchema) })
  cipher(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    return this.keyring.setCipher(principal, parse(cipherSchema, body).cipher);
  }
}
