import { Controller, Get, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { Public } from '@palisade/service-kit';
import { providerIdParam } from '../identity-providers/identity-providers.dto';
import { audience, parse, tenantId } from '../validation';
import { PalisadeError } from '@palisade/contracts';
import { OidcService } from './oidc.service';
import { SamlService } from './saml.service';

/** The HTTP-POST binding posts a form; only JSON is parsed globally, so the ACS reads its own (bounded) body. */
const MAX_FORM_BYTES = 256 * 1024;
async function formOf(req: Request): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) throw new PalisadeError('validation', 'body: must be application/x-www-form-urlencoded (SAML HTTP-POST binding)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new PalisadeError('payload_too_large', `body: at most ${MAX_FORM_BYTES} bytes`);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
const samlResponse = z.string().min(1).max(MAX_FORM_BYTES).regex(/^[A-Za-z0-9+/=\s]+$/, 'must be base64');

const loginQuery = z.strictObject({ audience: z.union([z.string(), z.array(z.string())]).optional() });
const callbackQuery = z.object({
  state: z.string().min(1).max(200),
  code: z.string().min(1).max(4096).optional(),
  error: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be an OAuth error code').optional(),
  error_description: z.string().max(1000).optional(),
  iss: z.string().max(2048).optional(),
  session_state: z.string().max(1000).optional(),
});

@ApiTags('sso')
@Controller('v1')
export class SsoController {
  constructor(
    @Inject(OidcService) private readonly oidc: OidcService,
    @Inject(SamlService) private readonly saml: SamlService,
  ) {}

  @Get('tenants/:tenantId/sso/oidc/:providerId/login')
  @Public()
  @ApiOperation({ summary: 'Start OIDC sign-in: 302 to the provider (authorization code + PKCE S256, state, nonce)' })
  async oidcLogin(@Param('tenantId') tenant: string, @Param('providerId') providerId: string, @Query() query: unknown, @Res() res: Response) {
    const q = parse(loginQuery, query);
    const aud = q.audience === undefined ? undefined : parse(audience, Array.isArray(q.audience) ? q.audience : [q.audience]);
    const location = await this.oidc.begin(parse(tenantId, tenant), parse(providerIdParam, providerId), aud);
    res.redirect(302, location);
  }

  @Get('sso/oidc/callback')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'OIDC redirect URI: the code is exchanged and the ID token checked → access + refresh token (401 for anything refused)' })
  oidcCallback(@Query() query: unknown, @Req() req: Request) {
    const q = parse(callbackQuery, query);
    return this.oidc.callback({ state: q.state, ...(q.code ? { code: q.code } : {}), ...(q.error ? { error: q.error } : {}), ...(q.iss ? { iss: q.iss } : {}) }, req.socket.remoteAddress ?? 'unknown');
  }

  @Get('tenants/:tenantId/sso/saml/:providerId/metadata')
  @Public()
  @ApiOperation({ summary: 'SAML 2.0 SP metadata of this tenant and provider (entity ID, ACS URL, signed assertions wanted)' })
  async samlMetadata(@Param('tenantId') tenant: string, @Param('providerId') providerId: string, @Res() res: Response) {
    const xml = await this.saml.metadata(parse(tenantId, tenant), parse(providerIdParam, providerId));
    res.type('application/samlmetadata+xml').send(xml);
  }

  @Get('tenants/:tenantId/sso/saml/:providerId/login')
  @Public()
  @ApiOperation({ summary: 'Start SAML sign-in (SP-initiated): 302 to the IdP with an AuthnRequest' })
  async samlLogin(@Param('tenantId') tenant: string, @Param('providerId') providerId: string, @Res() res: Response) {
    res.redirect(302, await this.saml.begin(parse(tenantId, tenant), parse(providerIdParam, providerId)));
  }

  @Post('tenants/:tenantId/sso/saml/:providerId/acs')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Assertion consumer service (HTTP-POST SAMLResponse): a valid signed assertion → access + refresh token; anything else 401' })
  async samlAcs(@Param('tenantId') tenant: string, @Param('providerId') providerId: string, @Req() req: Request) {
    const t = parse(tenantId, tenant);
    const p = parse(providerIdParam, providerId);
    const form = await formOf(req);
    const response = parse(samlResponse, form.get('SAMLResponse') ?? '');
    return this.saml.acs(t, p, response, req.socket.remoteAddress ?? 'unknown');
  }
}
