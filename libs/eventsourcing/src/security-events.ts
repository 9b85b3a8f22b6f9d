import { eventForgeryDetected, type EventFactoryContext, type ForgeryReport } from '@palisade/contracts';
import type { EventStore } from './event-store';

/**
 * A durable consumer's `onForgery`: the report becomes the service's own security event,
 * in a stream of its own, which the outbox carries to the audit chain.
 */
export function recordForgery(store: () => EventStore, context: EventFactoryContext): (report: ForgeryReport) => Promise<void> {
  return async (report) => {
    const e = eventForgeryDetected(context, report);
    await store().inTransaction((tx) => store().appendToStream(tx, `security-${e.id}`, [e], 0));
  };
}
