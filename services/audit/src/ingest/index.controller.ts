import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { AuditEvents } from '../audit.events';
import { requirePlatformScope } from '../query/access';
import { AuditRuntime } from './audit-runtime';

/** The record index is derived data: it can always be rebuilt from the topic. */
@ApiTags('audit index')
@Controller('v1/audit/index')
export class IndexController {
  constructor(
    private readonly runtime: AuditRuntime,
    private readonly events: AuditEvents,
  ) {}

  @Post('rebuild')
  @HttpCode(200)
  @ApiOperation({ summary: "Rebuild the query/de-duplication index from the audit topic (scope audit:admin, platform principal; answered by the writer instance, 409 elsewhere). Ingest pauses while the topic is re-read." })
  @ApiOkResponse({ description: '{indexed}: records read back from the topic and indexed' })
  async rebuild(@CurrentPrincipal() principal: Principal): Promise<{ indexed: number }> {
    requirePlatformScope(principal, 'audit:admin');
    const indexed = await this.runtime.rebuildIndex();
    await this.events.record(principal, 'audit.index.rebuilt', { indexed });
    return { indexed };
  }
}
