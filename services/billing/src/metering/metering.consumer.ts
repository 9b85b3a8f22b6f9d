import { eventSubject, PalisadeError, type EventEnvelope, type ServiceName } from '@palisade/contracts';
import { recordForgery, type EventStore } from '@palisade/eventsourcing';
import { DurableEventConsumer } from '@palisade/nats';
import type { Platform } from '@palisade/service-kit';
import type { LedgerService } from '../ledger/ledger.service';
import { parse } from '../validation';
import { usageRecordedSchema } from './metering.dto';

/** Who publishes usage, and the durable that reads it (deploy/local/nats-durables.txt). */
export const USAGE_SOURCES: ReadonlyArray<{ service: ServiceName; consumer: string }> = [
  { service: 'llm-router', consumer: 'router-usage' },
  { service: 'sandbox-orchestrator', consumer: 'sandbox-usage' },
];

/**
 * Metering from JetStream: each `<source>.usage.recorded` settles its hold through the
 * ledger (the same decision, transaction and usage line as the RPC). Exactly once by
 * construction: a redelivery, a duplicate or an event whose request was settled over
 * NATS meets the hold's first answer and changes nothing; a kill -9 before the commit
 * leaves the event unacknowledged, so it is delivered again and settles then.
 */
export async function handleUsageRecorded(ledger: Pick<LedgerService, 'settle'>, event: EventEnvelope): Promise<void> {
  const d = parse(usageRecordedSchema, event.data);
  try {
    await ledger.settle(event.source, {
      tenantId: event.tenantId,
      requestId: d.requestId,
      actualMicros: d.actualMicros,
      model: d.model ?? null,
      usage: d.usage ?? [],
      revision: d.revision ?? 0,
      // the period is the usage's, not the arrival's: the event says when it happened
      occurredAt: new Date(d.occurredAt ?? event.occurredAt),
      agentId: d.agentId ?? null,
      ...(d.allotmentId ? { allotmentId: d.allotmentId } : {}),
      teamId: d.teamId ?? null,
      userId: d.userId ?? null,
    });
  } catch (error) {
    // A settle the ledger refuses for good (no such hold and no agent to post it to, a refused or released one,
    // another source than the router naming an allotment) is not retried: it is acknowledged and reported;
    // anything else is retried, then dead-lettered.
    if (error instanceof PalisadeError && ['not_found', 'illegal_state', 'validation', 'forbidden'].includes(error.code)) return;
    throw error;
  }
}

/** Usage events handled at once by each durable. */
export const USAGE_CONCURRENCY = 64;

export class MeteringConsumers {
  private consumers: DurableEventConsumer[] = [];

  constructor(platform: Platform, ledger: () => Pick<LedgerService, 'settle'>, store: () => EventStore) {
    platform.afterConnect(async (p) => {
      if (this.consumers.length > 0) return;
      for (const source of USAGE_SOURCES) {
        const consumer = new DurableEventConsumer({
          nc: p.nats!,
          service: 'billing',
          consumer: source.consumer,
          filterSubjects: eventSubject(`${source.service}.usage.recorded`),
          handler: async (event) => {
            try {
              await handleUsageRecorded(ledger(), event);
            } catch (error) {
              p.logger.warn({ err: (error as Error).message, eventId: event.id }, 'usage event not settled; retried');
              throw error;
            }
          },
          onForgery: recordForgery(store, p.eventContext),
          // A settle takes milliseconds; what a killed replica had pulled comes again after 5 s, not 30.
          ackWaitMs: 5000,
          // Many at once, so that the ledger settles them in one batch (a transaction each, one at a
          // time, drained a backlog at about 60 events/s a replica). Their order does not matter:
          // each settles its own request id, once, and a request's revisions are ordered by number.
          concurrency: USAGE_CONCURRENCY,
          logger: p.logger,
          tracer: p.options.tracer,
        });
        await consumer.start();
        this.consumers.push(consumer);
      }
    });
    platform.beforeClose(async () => {
      await Promise.all(this.consumers.map((c) => c.stop()));
      this.consumers = [];
    });
  }
}
