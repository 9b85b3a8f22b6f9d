import { Inject, Injectable } from '@nestjs/common';
import { buildEvent, PalisadeError, SYSTEM_TENANT, type Principal } from '@palisade/contracts';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import type { EntityManager } from 'typeorm';

/** Event types the audit service emits (coverage/action-classes.ts classifies them). */
export type AuditEventType = 'audit.events.queried' | 'audit.events.exported' | 'audit.subject.erased' | 'audit.signing_key.rotated' | 'audit.index.rebuilt' | 'audit.index.quarantined'
  | 'audit.feed.created' | 'audit.feed.deleted' | 'audit.feed.paused' | 'audit.feed.resumed';

/** The audit service itself, as the actor of what it does on its own (tenant `system`). */
export const AUDIT_SERVICE_PRINCIPAL: Principal = { type: 'service', id: 'audit', tenantId: SYSTEM_TENANT };

/**
 * The audit service's own events: each access to the log (query, export), each erasure
 * and key rotation, appended to its event store and relayed by its outbox to JetStream,
 * whence they come back into the audit log like any other service's events.
 */
@Injectable()
export class AuditEvents {
  constructor(@Inject(PLATFORM) private readonly platform: Platform) {}

  async record(principal: Principal, type: AuditEventType, data: Record<string, unknown>): Promise<string> {
    return this.recordWith(principal, type, data, async () => undefined);
  }

  /** Record the event in the transaction of `change`: a change and its audit event commit together or not at all. */
  async recordWith(principal: Principal, type: AuditEventType, data: Record<string, unknown>, change: (db: EntityManager) => Promise<void>): Promise<string> {
    const store = this.platform.eventStore;
    if (!store) throw new PalisadeError('unavailable', 'the audit service is starting');
    const event = buildEvent(this.platform.eventContext, {
      type,
      tenantId: principal.tenantId,
      actor: { type: principal.type, id: principal.id },
      data,
    });
    const aggregate = type.split('.')[1];
    await store.inTransaction(async (tx) => {
      // The PostgreSQL event store's transaction is a TypeORM EntityManager.
      await change(tx as unknown as EntityManager);
      await store.appendToStream(tx, `${aggregate}-${event.id}`, [event], 0);
    });
    return event.id;
  }
}
