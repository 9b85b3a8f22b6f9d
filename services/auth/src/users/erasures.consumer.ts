import { eventSubject } from '@palisade/contracts';
import { recordForgery, type EventStore } from '@palisade/eventsourcing';
import { DurableEventConsumer } from '@palisade/nats';
import type { Platform } from '@palisade/service-kit';
import type { UsersService } from './users.service';

/** The durable that reads the audit service's erasures (deploy/local/nats-durables.txt). */
export const ERASURES_CONSUMER = 'subject-erasures';

/**
 * One erasure, everywhere: when the audit service erases a data subject (destroying the
 * keys its personal data is sealed under), auth ends that user's account and forgets the
 * name its user list holds in plaintext. The shared consumer refuses an
 * `audit.subject.erased` published by anyone but audit.
 */
export class ErasuresConsumer {
  private consumer: DurableEventConsumer | undefined;

  constructor(platform: Platform, users: () => Pick<UsersService, 'eraseSubject'>, store: () => EventStore) {
    platform.afterConnect(async (p) => {
      if (this.consumer) return;
      const consumer = new DurableEventConsumer({
        nc: p.nats!,
        service: 'auth',
        consumer: ERASURES_CONSUMER,
        filterSubjects: eventSubject('audit.subject.erased'),
        handler: async (event) => {
          const erased = await users().eraseSubject(event);
          if (erased > 0) p.logger.info({ eventId: event.id, accounts: erased }, 'erased data subject: user account ended');
        },
        onForgery: recordForgery(store, p.eventContext),
        logger: p.logger,
        tracer: p.options.tracer,
      });
      await consumer.start();
      this.consumer = consumer;
    });
    platform.beforeClose(async () => {
      await this.consumer?.stop();
    });
  }
}
