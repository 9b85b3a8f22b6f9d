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
