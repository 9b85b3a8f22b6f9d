import { Controller, Delete, HttpCode, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { PalisadeError, SYSTEM_TENANT, type Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { AuditEvents } from '../audit.events';
import { AuditRuntime } from '../ingest/audit-runtime';
import { parseInput, safeText } from '../validation';

export const ERASE_SCOPE = 'audit:erase';
const subjectIdSchema = safeText(256);

/**
 * Erasure of a data subject (GDPR art. 17): destroys the subject's keys, so the
 * `personal` members sealed under them can never be opened again, while every record
 * (whose hash covers the ciphertext) still verifies. The erasure is itself an audited
 * event (audit.subject.erased). Who may erase (scope audit:erase):
 * - a platform principal (tenant `system`): any subject;
 * - a tenant's auditor admin: a subject whose records all belong to that tenant; a
 *   subject without records in the tenant does not exist for it (404), one that also
 *   appears in other tenants' records needs a platform principal (403).
 */
@ApiTags('audit subjects')
@Controller('v1/audit/subjects')
export class SubjectsController {
  constructor(
    private readonly runtime: AuditRuntime,
    private readonly events: AuditEvents,
  ) {}

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: "Erase a data subject: destroy its keys (records stay and verify; their personal data reads back as erased). Scope audit:erase, platform principal or the tenant's auditor admin." })
  @ApiOkResponse({ description: '{subjectId, keysDestroyed, eventId}' })
  async erase(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<{ subjectId: string; keysDestroyed: number; eventId: string }> {
    const subjectId = parseInput(subjectIdSchema, id, 'path id');
    if (!(principal.scopes ?? []).includes(ERASE_SCOPE)) throw new PalisadeError('forbidden', `erasing a data subject needs scope ${ERASE_SCOPE}`);
    if (principal.tenantId !== SYSTEM_TENANT) {
      const tenants = await this.runtime.query.tenantsOfSubject(this.runtime.db(), this.runtime.settings.topic, subjectId);
      if (!tenants.includes(principal.tenantId)) throw new PalisadeError('not_found', `data subject ${subjectId} not found`);
      if (tenants.length > 1) throw new PalisadeError('forbidden', 'this data subject also appears in other tenants\' records: a platform principal must erase it');
    }
    const keyIds = await this.runtime.query.keyIdsOfSubject(this.runtime.db(), this.runtime.settings.topic, subjectId);
    const keysDestroyed = await this.runtime.personal.erase(subjectId, keyIds);
    const eventId = await this.events.record(principal, 'audit.subject.erased', { subjectId, keysDestroyed });
    return { subjectId, keysDestroyed, eventId };
  }
}
