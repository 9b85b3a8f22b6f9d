import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from 'nats';
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
  /** How long to wait for JetStream's acknowledgements of a batch. Default 10 s. */
  ackTimeoutMs?: number;
  /** Subject of an event. Default `palisade.events.<type>` (`eventSubject`). */
  subjectOf?: (event: EventEnvelope) => string;
  /** The stream that must store the events (`Nats-Expected-Stream`). Default PALISADE_EVENTS. */
  streamName?: string;
}

interface Pending {
  resolve: () => void;
  reject: (reason: string) => void;
}

const decoder = new TextDecoder();

/**
 * Publishes events to PALISADE_EVENTS on `palisade.events.<type>`. Every event carries
 * `Nats-Msg-Id: <event id>`, so JetStream stores an event republished within the
 * stream's duplicate window (1 h) once: the outbox relay may retry a batch freely.
 *
 * A batch is pipelined: every message is written at once, each with its own reply
 * subject on one long-lived inbox subscription, and `publish` resolves when JetStream
 * has acknowledged them all (one timer per batch, not per message). Trace context of
 * the caller rides in `traceparent` / `tracestate`.
 */
export class JetStreamEventPublisher implements EventPublisher {
  private readonly ackTimeoutMs: number;
  private readonly subjectOf: (event: EventEnvelope) => string;
  private readonly streamName: string;
  private readonly inbox: string;
  private readonly pending = new Map<string, Pending>();
  private subscription: Subscription | undefined;
  private next = 0;

  constructor(
    private readonly nc: NatsConnection,
    options: JetStreamEventPublisherOptions = {},
  ) {
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.subjectOf = options.subjectOf ?? ((event) => eventSubject(event.type));
    this.streamName = options.streamName ?? EVENTS_STREAM;
    this.inbox = createInbox((nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
  }

  async publish(events: readonly EventEnvelope[]): Promise<void> {
    if (events.length === 0) return;
    const invalid: { index: number; id: unknown; problems: string[] }[] = [];
    const payloads: Uint8Array[] = new Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const result = validateForPublish(events[i]);
      if (!result.ok) invalid.push({ index: i, id: (events[i] as { id?: unknown })?.id, problems: result.problems });
      // Buffer.from: the same UTF-8 bytes as TextEncoder (lone surrogates as U+FFFD; JSON.stringify escapes them anyway), in half the time
      else payloads[i] = Buffer.from(JSON.stringify(result.event), 'utf8');
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

    this.subscribe();
    const trace = traceHeaders();
    const tokens: string[] = new Array(events.length);
    const acks = events.map((event, i) => {
      const token = String(this.next++);
      tokens[i] = token;
      const h = natsHeaders();
      h.set('Nats-Msg-Id', event.id);
      h.set('Nats-Expected-Stream', this.streamName);
      for (const [k, v] of trace) h.set(k, v);
      const ack = new Promise<void>((resolve, reject) => this.pending.set(token, { resolve, reject }));
      this.nc.publish(this.subjectOf(event), payloads[i], { reply: `${this.inbox}.${token}`, headers: h });
      return ack;
    });

    const timer = setTimeout(() => {
      for (const token of tokens) this.settle(token, `no acknowledgement within ${this.ackTimeoutMs} ms`);
    }, this.ackTimeoutMs);
    try {
      const results = await Promise.allSettled(acks);
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ id: events[i].id, reason: String(r.reason) }] : []));
      if (failed.length) {
        throw new PalisadeError(
          'unavailable',
          `JetStream did not store ${failed.length} of ${events.length} event(s): ${failed[0].reason}`,
          { failed },
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stop listening for acknowledgements (the connection stays open). */
  close(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    for (const token of [...this.pending.keys()]) this.settle(token, 'publisher closed');
  }

  private subscribe(): void {
    if (this.subscription && !this.subscription.isClosed()) return;
    this.subscription = this.nc.subscribe(`${this.inbox}.*`, {
      callback: (error, msg) => {
        if (error) {
          for (const token of [...this.pending.keys()]) this.settle(token, error.message);
          return;
        }
        this.onAck(msg);
      },
    });
  }

  private onAck(msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length + 1);
    if (msg.headers?.hasError) {
      // 503: no stream takes this subject
      this.settle(token, `${msg.headers.code} ${msg.headers.description || 'no stream for this subject'}`.trim());
      return;
    }
    let ack: { error?: { description?: string; code?: number } } | undefined;
    try {
      ack = JSON.parse(decoder.decode(msg.data));
    } catch {
      this.settle(token, 'malformed acknowledgement');
      return;
    }
    if (ack?.error) this.settle(token, `${ack.error.code ?? ''} ${ack.error.description ?? 'JetStream error'}`.trim());
    else this.settle(token);
  }

  private settle(token: string, failure?: string): void {
    const pending = this.pending.get(token);
    if (!pending) return;
    this.pending.delete(token);
    if (failure === undefined) pending.resolve();
    else pending.reject(failure);
  }
}
