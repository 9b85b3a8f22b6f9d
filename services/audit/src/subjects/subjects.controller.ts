import { Controller, Delete, HttpCode, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { parse, safeText } from '../validation';
import { SubjectsService } from './subjects.service';

const subjectIdSchema = safeText(256);

/** Erasure of a data subject (subjects.service.ts). */
@ApiTags('audit subjects')
@Controller('v1/audit/subjects')
export class SubjectsController {
  constructor(private readonly subjects: SubjectsService) {}

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: "Erase a data subject: destroy its keys (records stay and verify; their personal data reads back as erased). Scope audit:erase, platform principal or the tenant's auditor admin." })
  @ApiOkResponse({ description: '{subjectId, keysDestroyed, eventId}' })
  erase(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<{ subjectId: string; keysDestroyed: number; eventId: string }> {
    return this.subjects.erase(principal, parse(subjectIdSchema, id, 'path id'));
  }
}
