import { Controller, Get, HttpCode, Inject, Param, Post, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, Public } from '@palisade/service-kit';
import { KeyRing } from './signing-keys.service';
import { parse, requireScope } from '../validation';
import { Administers } from '../administration';

@ApiTags('keys')
@Administers('signing keys')
@Controller()
export class SigningKeysController {
  constructor(@Inject(KeyRing) private readonly keyRing: Pick<KeyRing, 'jwks' | 'rotate' | 'revoke'>) {}

  @Get('.well-known/jwks.json')
  @Public()
  @ApiOperation({ summary: 'Public keys that sign access tokens (next, active, recently retired)' })
  jwks(@Res({ passthrough: true }) res: Response) {
    res.setHeader('cache-control', 'public, max-age=300');
    return this.keyRing.jwks();
  }

  @Post('v1/signing-keys/rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'Rotate now: the published next key starts signing (scope auth:keys, operator tenant)' })
  rotate(@CurrentPrincipal() principal: Principal) {
    requireScope(principal, 'auth:keys');
    return this.keyRing.rotate({ type: principal.type, id: principal.id });
  }

  @Post('v1/signing-keys/:kid/revoke')
  @HttpCode(204)
  @ApiOperation({ summary: 'Withdraw a key: every token it signed is refused within a second (scope auth:keys)' })
  async revoke(@CurrentPrincipal() principal: Principal, @Param('kid') kid: string) {
    requireScope(principal, 'auth:keys');
    await this.keyRing.revoke(parse(z.string().regex(/^k-[0-9-]+-[0-9a-f]{12}$/, 'must be a key id'), kid), { type: principal.type, id: principal.id });
  }
}
