import { headers as natsHeaders, type JetStreamClient, type NatsConnection } from 'nats';
import {
  EVENTS_STREAM,
  eventSubject,
  PalisadeError,
  validateForPublish,
  type EventEnvelope,
  type EventPublisher,
} from '@palisade/contracts';
import { traceHeaders } from './trace';

export interface JetStreamEventPublisherOptions {
  /** How long to wait for JetStream's acknowledgement of each event. Default 10 s. */
  ackTimeoutMs?: number;
}

const encoder = new TextEncoder();

/**
 * Publishes events to PALISADE_EVENTS on `palisade.events.<type>`. Every event carries
 * `Nats-Msg-Id: <event id>`, so JetStream stores an event republished within the
 * stream's duplicate window (1 h) once: the outbox relay may retry a batch freely.
 * A batch is pipelined: all messages are written at once, then every acknowledgement
 * is awaited. Trace context of the caller rides in `traceparent` / `tracestate`.
 */
export class JetStreamEventPublisher implements EventPublisher {
  private readonly js: JetStreamClient;
  private readonly ackTimeoutMs: number;

  constructor(js: JetStreamClient | NatsConnection, options: JetStreamEventPublisherOptions = {}) {
    this.js = 'jetstream' in js ? js.jetstream() : js;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
  }

  async publish(events: readonly EventEnvelope[]): Promise<void> {
    if (events.length === 0) return;
    const invalid: { index: number; id: unknown; problems: string[] }[] = [];
    const payloads: Uint8Array[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const result = validateForPublish(events[i]);
      if (!result.ok) invalid.push({ index: i, id: (events[i] as { id?: unknown })?.id, problems: result.problems });
      else payloads[i] = encoder.encode(JSON.stringify(result.event));
    }
    if (invalid.length) {
      throw new PalisadeError(
        'validation',
        `refusing to publish ${invalid.length} invalid event(s): ${invalid
          .map((e) => `#${e.index} ${String(e.id)}: ${e.problems.join('; ')}`)
          .join(' | ')}`,
        { invalid },
      );
    }
    const trace = traceHeaders();
    const acks = events.map((event, i) => {
      const h = natsHeaders();
      for (const [k, v] of trace) h.set(k, v);
      return this.js.publish(eventSubject(event.type), payloads[i], {
        msgID: event.id,
        headers: h,
        expect: { streamName: EVENTS_STREAM },
        timeout: this.ackTimeoutMs,
      });
    });
    const results = await Promise.allSettled(acks);
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: events[i].id, reason: String(r.reason?.message ?? r.reason) }] : []));
    if (failed.length) {
      throw new PalisadeError('unavailable', `JetStream did not store ${failed.length} of ${events.length} event(s): ${failed[0].reason}`, {
        failed,
      });
    }
  }
}
