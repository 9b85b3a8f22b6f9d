import type { EventEnvelope } from './envelope';

/**
 * Where the outbox relay hands committed events. Implemented by the JetStream adapter
 * (@palisade/nats); the PostgreSQL relay (@palisade/postgres) only knows this port.
 * `publish` resolves once every event of the batch is durably stored downstream, and
 * must be idempotent by `event.id` (a relay that died mid-batch publishes it again).
 */
export interface EventPublisher {
  publish(events: readonly EventEnvelope[]): Promise<void>;
}

/**
 * Seals the `personal` member of events before they are stored (issue 10): plaintext
 * `personal` replaced by its sealed form, an event without `personal` or already sealed
 * returned as it is, in the same order. Implemented by the NATS adapter (@palisade/nats,
 * asking the audit service, which holds the keys); the PostgreSQL event store
 * (@palisade/postgres) only knows this port. Throws rather than return plaintext.
 */
export interface PersonalSealer {
  seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]>;
}
