import { Body, Controller, Headers, Inject, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { PalisadeError } from '@palisade/contracts';
import { Public } from '@palisade/service-kit';
import { registerUserBody } from '../users/users.dto';
import { parse, tenantId } from '../validation';
import { BootstrapService } from './bootstrap.service';

const bootstrapBody = z.strictObject({
  tenantId,
  tenantName: z.string().min(1).max(200),
  admin: registerUserBody.omit({ roles: true }),
});

@ApiTags('bootstrap')
@Controller('v1/bootstrap')
export class BootstrapController {
  constructor(@Inject(BootstrapService) private readonly bootstrap: BootstrapService) {}

  @Post()
  @Public()
  @ApiOperation({ summary: 'Once, with the bootstrap token (Authorization: Bootstrap <token>): the first tenant and its administrator' })
  create(@Headers('authorization') authorization: string | undefined, @Body() body: unknown) {
    const m = authorization ? /^Bootstrap ([A-Za-z0-9_-]{32,200})$/.exec(authorization) : null;
    if (!m) throw new PalisadeError('unauthenticated', 'a bootstrap token is required (Authorization: Bootstrap …)');
    return this.bootstrap.bootstrap(m[1], parse(bootstrapBody, body));
  }
}
