import { PalisadeError, SYSTEM_TENANT, type Principal } from '@palisade/contracts';
import type { AuditEvents, Transactions } from '../audit.events';
import type { QueryRepository } from '../query/query.repository';
import type { PersonalData } from './personal-data';

export const ERASE_SCOPE = 'audit:erase';

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
export class SubjectsService {
  constructor(
    private readonly transactions: Transactions,
    private readonly index: Pick<QueryRepository, 'tenantsOfSubject' | 'keyIdsOfSubject'>,
    private readonly personal: Pick<PersonalData, 'erase'>,
    private readonly events: Pick<AuditEvents, 'record'>,
    private readonly topic: string,
  ) {}

  async erase(principal: Principal, subjectId: string): Promise<{ subjectId: string; keysDestroyed: number; eventId: string }> {
    if (!(principal.scopes ?? []).includes(ERASE_SCOPE)) throw new PalisadeError('forbidden', `erasing a data subject needs scope ${ERASE_SCOPE}`);
    if (principal.tenantId !== SYSTEM_TENANT) {
      const tenants = await this.transactions.inTransaction((tx) => this.index.tenantsOfSubject(tx, this.topic, subjectId));
      if (!tenants.includes(principal.tenantId)) throw new PalisadeError('not_found', `data subject ${subjectId} not found`);
      if (tenants.length > 1) throw new PalisadeError('forbidden', 'this data subject also appears in other tenants\' records: a platform principal must erase it');
    }
    const keyIds = await this.transactions.inTransaction((tx) => this.index.keyIdsOfSubject(tx, this.topic, subjectId));
    const keysDestroyed = await this.personal.erase(subjectId, keyIds);
    const eventId = await this.events.record(principal, 'audit.subject.erased', { subjectId, keysDestroyed });
    return { subjectId, keysDestroyed, eventId };
  }
}
