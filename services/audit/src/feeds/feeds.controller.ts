import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { parse } from '../validation';
import { createFeedSchema, feedIdSchema } from './feeds.dto';
import { FeedsService } from './feeds.service';

/** SIEM feeds per tenant (feeds.service.ts). Scope audit:admin. */
@ApiTags('audit feeds')
@Controller('v1/audit/feeds')
export class FeedsController {
  constructor(private readonly feeds: FeedsService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a SIEM feed: kind splunk-hec (https url, token: write-only) or syslog (RFC 5425 over TLS), format json or cef. Scope audit:admin.' })
  @ApiOkResponse({ description: 'the feed, token redacted' })
  create(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    return this.feeds.create(principal, parse(createFeedSchema, body, 'body'));
  }

  @Get()
  @ApiOperation({ summary: "The caller's tenant's feeds (every tenant's for a platform principal), secrets redacted. Scope audit:admin." })
  list(@CurrentPrincipal() principal: Principal) {
    return this.feeds.list(principal);
  }

  @Get(':id')
  @ApiOperation({ summary: 'A feed and its delivery status: cursor and lag per topic partition, last delivery, last error class. Scope audit:admin.' })
  status(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.feeds.status(principal, parse(feedIdSchema, id, 'path id'));
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete a feed: delivery has stopped when this answers (on the delivering instance; elsewhere within a second). Scope audit:admin.' })
  remove(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.feeds.remove(principal, parse(feedIdSchema, id, 'path id'));
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause a feed: delivery stops, the cursor stays; resume continues from it. Scope audit:admin.' })
  pause(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.feeds.setPaused(principal, parse(feedIdSchema, id, 'path id'), true);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a paused feed from its cursor. Scope audit:admin.' })
  resume(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.feeds.setPaused(principal, parse(feedIdSchema, id, 'path id'), false);
  }
}
