import type { ServiceName } from './services';

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

/** Where a consumer of `service` sends what it gave up on: palisade.dlq.<service>.<consumer>. */
export function deadLetterSubject(service: ServiceName, consumer: string): string {
  return `${DEAD_LETTER_PREFIX}.${service}.${consumer}`;
}
