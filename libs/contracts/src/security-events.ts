import { buildEvent, SYSTEM_TENANT, type EventEnvelope, type EventFactoryContext } from './envelope';
import type { ServiceName } from './services';

/**
 * Platform security events. Every event type names the service that emits it, so a
 * security event is `<reporting service>.security.<what>`; the audit service chains it
 * in the `system` tenant like any other event.
 */
export const EVENT_FORGERY_DETECTED = 'security.event-forgery-detected';

/**
 * What a consumer saw when an event claimed another origin than the service that
 * published it (`eventOriginProblems`). Carries no actor and no personal data of the
 * forged event: only where it came from and what it claimed.
 */
export interface ForgeryReport {
  /** The NATS subject it arrived on. */
  subject: string;
  /** The service named by the subject, the one that published it (undefined: none). */
  publisher: ServiceName | undefined;
  claimedSource: string;
  claimedType: string;
  eventId: string;
  tenantId: string;
  /** The durable that received it, and the stream sequence there. */
  consumer: string;
  streamSequence: number;
  problems: string[];
}

export type EventForgeryDetected = EventEnvelope<`${ServiceName}.${typeof EVENT_FORGERY_DETECTED}`, ForgeryReportData>;
export type ForgeryReportData = Omit<ForgeryReport, 'publisher'> & { publisher: ServiceName | null };

/** The event the consuming service (`ctx.source`) emits about a forgery it refused. */
export function eventForgeryDetected(ctx: EventFactoryContext, report: ForgeryReport): EventForgeryDetected {
  return buildEvent(ctx, {
    type: `${ctx.source}.${EVENT_FORGERY_DETECTED}` as const,
    tenantId: SYSTEM_TENANT,
    actor: { type: 'service', id: ctx.source },
    data: { ...report, publisher: report.publisher ?? null },
  });
}
