import { Controller, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { requirePlatformScope } from '../query/access';
import { IngestService } from './ingest.service';

/** The record index is derived data: it can always be rebuilt from the topic. */
@ApiTags('audit index')
@Controller('v1/audit/index')
export class IndexController {
  constructor(private readonly ingest: IngestService) {}

  @Post('rebuild')
  @HttpCode(200)
  @ApiOperation({ summary: "Rebuild the query/de-duplication index from the audit topic (scope audit:admin, platform principal; answered by the writer instance, 409 elsewhere). Ingest pauses while the topic is re-read." })
  @ApiOkResponse({ description: '{indexed}: records read back from the topic and indexed' })
  rebuild(@CurrentPrincipal() principal: Principal): Promise<{ indexed: number }> {
    requirePlatformScope(principal, 'audit:admin');
    return this.ingest.rebuildIndex(principal);
  }
}
