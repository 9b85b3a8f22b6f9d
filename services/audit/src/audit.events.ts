import { buildEvent, SYSTEM_TENANT, type EventFactoryContext, type Principal } from '@palisade/contracts';
import type { EventStore, Transaction } from '@palisade/eventsourcing';

/** Event types the audit service emits (coverage/action-classes.ts classifies them). */
export type AuditEventType = 'audit.events.queried' | 'audit.events.exported' | 'audit.subject.erased' | 'audit.signing_key.rotated' | 'audit.index.rebuilt' | 'audit.index.quarantined'
  | 'audit.feed.created' | 'audit.feed.deleted' | 'audit.feed.paused' | 'audit.feed.resumed';

/** The audit service itself, as the actor of what it does on its own (tenant `system`). */
export const AUDIT_SERVICE_PRINCIPAL: Principal = { type: 'service', id: 'audit', tenantId: SYSTEM_TENANT };

/** Runs work in one database transaction (the event store's): every repository call of the audit service goes through it. */
export type Transactions = Pick<EventStore, 'inTransaction'>;

/**
 * The audit service's own events: each access to the log (query, export), each erasure
 * and key rotation, appended to its event store and relayed by its outbox to JetStream,
 * whence they come back into the audit log like any other service's events.
 */
export class AuditEvents {
  constructor(
    /** The event store (throws `unavailable` while the service is starting). */
    private readonly store: () => Pick<EventStore, 'inTransaction' | 'appendToStream'>,
    private readonly context: EventFactoryContext,
  ) {}

  async record(principal: Principal, type: AuditEventType, data: Record<string, unknown>): Promise<string> {
    return this.recordWith(principal, type, data, async () => undefined);
  }

  /** Record the event in the transaction of `change`: a change and its audit event commit together or not at all. */
  async recordWith(principal: Principal, type: AuditEventType, data: Record<string, unknown>, change: (tx: Transaction) => Promise<void>): Promise<string> {
    const store = this.store();
    const event = buildEvent(this.context, {
      type,
      tenantId: principal.tenantId,
      actor: { type: principal.type, id: principal.id },
      data,
    });
    const aggregate = type.split('.')[1];
    await store.inTransaction(async (tx) => {
      await change(tx);
      await store.appendToStream(tx, `${aggregate}-${event.id}`, [event], 0);
    });
    return event.id;
  }
}
