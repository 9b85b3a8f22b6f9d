import { serviceOfEventType } from './envelope';
import { isServiceName, type ServiceName } from './services';

/**
 * NATS subject naming. The emitting service is always the second token of an event
 * subject, so NATS permissions can let a service publish only its own events, and
 * the answering service is the third token of a request subject.
 *
 *   events:   palisade.events.<service>.<aggregate>.<verb>   (= palisade.events.<event type>)
 *   requests: palisade.rpc.<service>.<method>
 */
export const EVENTS_PREFIX = 'palisade.events';
export const RPC_PREFIX = 'palisade.rpc';
export const DEAD_LETTER_PREFIX = 'palisade.dlq';

/** The one JetStream stream that holds every platform event. */
export const EVENTS_STREAM = 'PALISADE_EVENTS';
/** Dead letters: messages a consumer could not process after its retries. */
export const DEAD_LETTER_STREAM = 'PALISADE_DLQ';

export function eventSubject(eventType: string): string {
  return `${EVENTS_PREFIX}.${eventType}`;
}

export function serviceEventsWildcard(service: ServiceName): string {
  return `${EVENTS_PREFIX}.${service}.>`;
}

export function rpcSubject(service: ServiceName, method: string): string {
  return `${RPC_PREFIX}.${service}.${method}`;
}

export function serviceRpcWildcard(service: ServiceName): string {
  return `${RPC_PREFIX}.${service}.>`;
}

/**
 * The service whose inbox a reply subject is in: `_INBOX.<service>.…` (libs/nats sets
 * that prefix, and NATS lets only `<service>` read it). A requester may name any reply
 * subject, but only its own inbox brings it the answer. Undefined for any other subject.
 */
export function serviceOfReplySubject(reply: string | undefined): ServiceName | undefined {
  const [inbox, service] = reply?.split('.', 2) ?? [];
  return inbox === '_INBOX' && service !== undefined && isServiceName(service) ? service : undefined;
}

/** Where a consumer of `service` sends what it gave up on: palisade.dlq.<service>.<consumer>. */
export function deadLetterSubject(service: ServiceName, consumer: string): string {
  return `${DEAD_LETTER_PREFIX}.${service}.${consumer}`;
}

/**
 * The service that published on an event subject: `palisade.events.<service>.…`, the
 * subject only that service may publish on (NATS permissions). Undefined when the
 * subject is not an event subject of a known service.
 */
export function publisherOfEventSubject(subject: string): ServiceName | undefined {
  const prefix = `${EVENTS_PREFIX}.`;
  if (!subject.startsWith(prefix)) return undefined;
  const service = subject.slice(prefix.length).split('.', 1)[0];
  return isServiceName(service) ? service : undefined;
}

/**
 * Why an event received on `subject` claims an origin other than the service that
 * published it: the envelope's `source` and the service of its `type` must both be the
 * service named by the subject. Empty when they agree. Pure, for every consumer.
 */
export function eventOriginProblems(subject: string, event: { source: string; type: string }): string[] {
  const publisher = publisherOfEventSubject(subject);
  if (!publisher) return [`subject: "${subject}" names no service`];
  const problems: string[] = [];
  if (event.source !== publisher) problems.push(`source: "${event.source}" published by ${publisher}`);
  const typeService = serviceOfEventType(event.type);
  if (typeService !== publisher) problems.push(`type: "${event.type}" published by ${publisher}`);
  return problems;
}
