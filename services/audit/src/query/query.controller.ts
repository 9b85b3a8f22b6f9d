import { Controller, Get, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { parse } from '../validation';
import { eventsQuerySchema, exportQuerySchema } from './query.dto';
import { QueryService, type EventsPage } from './query.service';

/** Queries and exports of the audit log (query.service.ts). */
@ApiTags('audit query')
@Controller('v1/audit/events')
export class QueryController {
  constructor(private readonly query: QueryService) {}

  @Get()
  @ApiOperation({ summary: 'Audit records filtered by tenant, time range (occurredAt), actor, action class, event type and data subject; cursor paging. Scope audit:read (own tenant) or audit:read:all.' })
  @ApiOkResponse({ description: '{items: records with `personal` opened (or {subjectId, erased: true}) and their actionClass, nextCursor}' })
  list(@CurrentPrincipal() principal: Principal, @Query() query: unknown): Promise<EventsPage> {
    return this.query.list(principal, parse(eventsQuerySchema, query, 'query'));
  }

  @Get('export')
  @ApiOperation({ summary: 'Export as NDJSON (the raw records, partition by partition in seq order: `palisade audit verify --file` checks them) or CSV (one row per record; personal data left out). Same filters and access as the query.' })
  @ApiProduces('application/x-ndjson', 'text/csv')
  async export(@CurrentPrincipal() principal: Principal, @Query() query: unknown, @Res() res: Response): Promise<void> {
    const exported = await this.query.export(principal, parse(exportQuerySchema, query, 'query'));
    res.status(200);
    res.setHeader('content-type', exported.contentType);
    res.setHeader('content-disposition', `attachment; filename="${exported.filename}"`);
    res.setHeader('cache-control', 'no-store');
    for await (const chunk of exported.chunks) {
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
    }
    res.end();
  }
}
