import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Jwks } from '@palisade/audit-log';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, Public } from '@palisade/service-kit';
import { requirePlatformScope } from '../query/access';
import { KeysService } from './keys.service';

@ApiTags('audit keys')
@Controller('v1/audit/keys')
export class KeysController {
  constructor(private readonly keys: KeysService) {}

  @Get()
  @Public()
  @ApiOperation({ summary: 'Checkpoint signing keys (Ed25519, or SM2 with kid sm2:…) as a JWKS; retired keys stay listed so old checkpoints keep verifying' })
  @ApiOkResponse({ description: '{"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"use":"sig"}, {"kty":"EC","crv":"SM2","x":…,"y":…,"kid":"sm2:…","use":"sig"}]}' })
  jwks(): Promise<Jwks> {
    return this.keys.jwks();
  }

  @Post('rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'Rotate the checkpoint signing key (scope audit:admin, platform tenant); the old key is retired, still published' })
  rotate(@CurrentPrincipal() principal: Principal): Promise<{ kid: string; retired: string | null }> {
    requirePlatformScope(principal, 'audit:admin');
    return this.keys.rotate(principal);
  }
}
