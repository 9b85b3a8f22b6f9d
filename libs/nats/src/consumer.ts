import { context, SpanKind, SpanStatusCode, trace, type SpanOptions, type Tracer } from '@opentelemetry/api';
import {
  AckPolicy,
  DeliverPolicy,
  headers as natsHeaders,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
  type MsgHdrs,
  type NatsConnection,
} from 'nats';
import {
  DEAD_LETTER_STREAM,
  deadLetterSubject,
  eventOriginProblems,
  EVENTS_STREAM,
  publisherOfEventSubject,
  validateConsumed,
  type EventEnvelope,
  type ForgeryReport,
  type ServiceName,
} from '@palisade/contracts';
import { deliveryOf } from './delivery';
import { silentLogger, type NatsLogger } from './logger';
import { extractTraceContext } from './trace';
import { setTimeout as sleep } from 'node:timers/promises';

/** What a handler learns about the delivery besides the event. */
export interface DeliveryInfo {
  subject: string;
  streamSequence: number;
  /** 1 on the first delivery; more on redeliveries. */
  deliveryCount: number;
  headers: MsgHdrs | undefined;
}

/**
 * Handles one event. Delivery is at least once: the same event comes again after a
 * failure, a crash before the acknowledgement or a lost acknowledgement, so a handler
 * must be idempotent (e.g. remember processed event ids in the same transaction).
 */
export type EventHandler = (event: EventEnvelope, delivery: DeliveryInfo) => Promise<void>;

export interface DurableEventConsumerOptions {
  nc: NatsConnection;
  /** The consuming service: the durable is `<service>-<consumer>`. */
  service: ServiceName;
  /** Consumer name, e.g. `audit-log`: lowercase letters, digits and "-". */
  consumer: string;
  /**
   * Subject(s) of PALISADE_EVENTS to receive, e.g. `palisade.events.>` or
   * `eventSubject('credential.secret.created')`. Several need nats-server 2.10.
   */
  filterSubjects: string | readonly string[];
  handler: EventHandler;
  /**
   * Called with an event that claims another origin than the service that published it
   * (its `source` or `type` names a service other than the subject's
   * `palisade.events.<service>.…`, on which only that service may publish): the service
   * raises `<service>.security.event-forgery-detected` (`eventForgeryDetected`) through
   * its own event path. The event is then dead-lettered (`forged`) and never reaches the
   * handler; when this callback fails, the event is retried like a failing handler.
   */
  onForgery: (report: ForgeryReport) => Promise<void>;
  /** Deliveries before a failing event is dead-lettered. Default 5. */
  maxDeliver?: number;
  /** Delay before the n-th redelivery (the last one repeats). Default 1 s, 5 s, 30 s, 2 min. */
  backoffMs?: readonly number[];
  /** How long the server waits for an acknowledgement before redelivering. Default 30 s. */
  ackWaitMs?: number;
  /** Events handled at once. Default 1 (in stream order). */
  concurrency?: number;
  /** Events pulled per request. Default 100. */
  batchSize?: number;
  /** Where a new durable starts. Default 'all' (every stored event). */
  deliverPolicy?: 'all' | 'new';
  logger?: NatsLogger;
  tracer?: Tracer;
}

/** Headers of a dead letter, besides the trace context of the original message. */
export const DLQ_HEADERS = {
  reason: 'Palisade-Dlq-Reason',
  problems: 'Palisade-Dlq-Problems',
  subject: 'Palisade-Dlq-Subject',
  stream: 'Palisade-Dlq-Stream',
  streamSequence: 'Palisade-Dlq-Stream-Seq',
  consumer: 'Palisade-Dlq-Consumer',
  deliveries: 'Palisade-Dlq-Deliveries',
} as const;

/**
 * `poison`: not a valid event; `forged`: it claims another origin than the service that
 * published it; `handler-failed`: the handler failed maxDeliver times.
 */
export type DeadLetterReason = 'poison' | 'forged' | 'handler-failed';

const CONSUMER_NAME = /^[a-z][a-z0-9-]{0,63}$/;
const decoder = new TextDecoder();
const headerValue = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(0, 2000);
const PROCESS_SPAN: SpanOptions = { kind: SpanKind.CONSUMER };

/**
 * A JetStream durable pull consumer of PALISADE_EVENTS with explicit acknowledgement.
 * Each message is validated (`validateConsumed`): an invalid one is dead-lettered at
 * once to `palisade.dlq.<service>.<consumer>` (stream PALISADE_DLQ) with headers
 * naming the problems. One whose `source` or `type` names another service than its
 * subject (`eventOriginProblems`) is reported (`onForgery`) and dead-lettered at once.
 * A failing handler is retried with backoff (nak with delay);
 * after `maxDeliver` deliveries the event is dead-lettered with the error. The handler
 * runs in an OpenTelemetry span whose parent is the trace context of the message.
 *
 * `stop()` stops pulling and waits for the events in hand; events pulled but not yet
 * handled are redelivered after the ack wait.
 */
export class DurableEventConsumer {
  readonly durable: string;
  readonly deadLetterSubject: string;
  private readonly js: JetStreamClient;
  private readonly logger: NatsLogger;
  private readonly tracer: Tracer;
  private readonly maxDeliver: number;
  private readonly backoffMs: readonly number[];
  private readonly ackWaitMs: number;
  private readonly concurrency: number;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  /** Events whose handler runs: kept in progress by one heartbeat. */
  private readonly inHand = new Set<JsMsg>();
  private stopped = false;

  constructor(private readonly options: DurableEventConsumerOptions) {
    if (!CONSUMER_NAME.test(options.consumer)) {
      throw new Error(`invalid consumer name "${options.consumer}": lowercase letters, digits and "-"`);
    }
    this.durable = `${options.service}-${options.consumer}`;
    this.deadLetterSubject = deadLetterSubject(options.service, options.consumer);
    this.js = options.nc.jetstream();
    this.logger = options.logger ?? silentLogger;
    this.tracer = options.tracer ?? trace.getTracer('@palisade/nats');
    this.maxDeliver = options.maxDeliver ?? 5;
    this.backoffMs = options.backoffMs?.length ? options.backoffMs : [1000, 5000, 30_000, 120_000];
    this.ackWaitMs = options.ackWaitMs ?? 30_000;
    this.concurrency = Math.max(1, options.concurrency ?? 1);
  }

  /** Create (or update) the durable, then start handling events in the background. */
  async start(): Promise<void> {
    if (this.loop) return;
    this.stopped = false;
    this.messages = await this.open();
    this.loop = this.supervise(this.messages);
    this.logger.info({ durable: this.durable, filter: this.options.filterSubjects }, 'event consumer started');
  }

  /**
   * Stop pulling and wait for the events being handled. A stop wins over a restart in
   * progress: the loop that is restarting sees it and closes what it opened.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close();
    await this.loop;
    this.loop = undefined;
    this.messages = undefined;
  }

  private async open(): Promise<ConsumerMessages> {
    await this.ensureDurable();
    const consumer = await this.js.consumers.get(EVENTS_STREAM, this.durable);
    // A deleted durable ends the pull (rather than leaving it waiting for nothing), and is made again.
    return consumer.consume({ max_messages: Math.max(this.options.batchSize ?? 100, this.concurrency), abort_on_missing_resource: true });
  }

  /** Handle events until stopped; a pull subscription that ends under us is opened again, until it opens. */
  private async supervise(first: ConsumerMessages): Promise<void> {
    let messages = first;
    for (;;) {
      await this.run(messages);
      if (this.stopped) return;
      // The pull subscription ended under us (e.g. the durable was deleted): start over.
      this.logger.warn({ durable: this.durable }, 'event consumer stopped unexpectedly, restarting');
      let reopened: ConsumerMessages | undefined;
      while (!reopened) {
        await sleep(1000);
        if (this.stopped) return;
        reopened = await this.open().catch((error: unknown) => {
          this.logger.error({ err: error, durable: this.durable }, 'event consumer restart failed; retrying');
          return undefined;
        });
      }
      if (this.stopped) {
        // Not awaited: a pull's close settles only once it is iterated, and this one never is
        // (what it buffered is redelivered after the ack wait).
        void reopened.close();
        return;
      }
      messages = this.messages = reopened;
      this.logger.info({ durable: this.durable }, 'event consumer restarted');
    }
  }

  private async ensureDurable(): Promise<void> {
    const jsm = await this.options.nc.jetstreamManager({ checkAPI: false });
    const filters = typeof this.options.filterSubjects === 'string' ? [this.options.filterSubjects] : [...this.options.filterSubjects];
    const config: Partial<ConsumerConfig> = {
      durable_name: this.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: this.options.deliverPolicy === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
      ack_wait: this.ackWaitMs * 1_000_000,
      // Redeliveries are counted here, not by the server, which would silently stop.
      max_deliver: -1,
      max_ack_pending: Math.max(1000, this.concurrency * 10),
    };
    if (filters.length === 1) config.filter_subject = filters[0];
    else config.filter_subjects = filters;
    try {
      await jsm.consumers.add(EVENTS_STREAM, config);
    } catch (error) {
      if (!/already (exists|in use)/i.test((error as Error).message)) throw error;
      await jsm.consumers.update(EVENTS_STREAM, this.durable, {
        ack_wait: config.ack_wait,
        max_ack_pending: config.max_ack_pending,
        ...(filters.length === 1 ? { filter_subject: filters[0] } : { filter_subjects: filters }),
      });
    }
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    let inflight = 0;
    // Woken when an event is done while the loop waits for room (not Promise.race over
    // the whole set per message: that is quadratic at a high concurrency), and at the end
    // when the last one is done.
    let room: (() => void) | undefined;
    const done = () => {
      inflight--;
      room?.();
      room = undefined;
    };
    // One timer tells the server that every event still being handled is in progress
    // (each at most half an ack wait after its handler started, as one timer per event did).
    const inHand = this.inHand;
    const heartbeat = setInterval(() => {
      for (const m of inHand) m.working();
    }, Math.max(1000, this.ackWaitMs / 2));
    heartbeat.unref();
    try {
      for await (const m of messages) {
        inflight++;
        this.process(m).then(done, done);
        if (inflight >= this.concurrency) await new Promise<void>((resolve) => (room = resolve));
      }
    } catch (error) {
      this.logger.error({ err: error, durable: this.durable }, 'event consumer failed');
    }
    while (inflight > 0) await new Promise<void>((resolve) => (room = resolve));
    clearInterval(heartbeat);
  }

  private async process(m: JsMsg): Promise<void> {
    // From the reply subject (the client's JsMsg has it, its type does not): `m.info` costs a
    // split and an object per message.
    const delivery = deliveryOf((m as JsMsg & { reply?: string }).reply ?? '') ?? { deliveryCount: m.info.redeliveryCount, streamSequence: m.seq };
    const { streamSequence } = delivery;
    // at least 1 whatever the subject said: it indexes the retry backoff and counts toward max-deliver
    const deliveryCount = Math.max(1, delivery.deliveryCount);
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(m.data));
    } catch {
      return this.deadLetter(m, 'poison', ['(event): not JSON']);
    }
    const validation = validateConsumed(value);
    if (!validation.ok) return this.deadLetter(m, 'poison', validation.problems);
    const event = validation.event;
    const subject = m.subject;
    const forgery = eventOriginProblems(subject, event);
    if (forgery.length > 0) return this.refuseForged(m, event, forgery);

    const parent = extractTraceContext(m.headers);
    // Attributes only for a span that is recorded: the SDK copies and checks them before it
    // knows whether it records (per event, even with nothing exported).
    const span = this.tracer.startSpan(`process ${subject}`, PROCESS_SPAN, parent);
    if (span.isRecording()) {
      span.setAttributes({
        'messaging.system': 'nats',
        'messaging.operation.type': 'process',
        'messaging.destination.name': subject,
        'messaging.consumer.group.name': this.durable,
        'messaging.message.id': event.id,
        'palisade.event.type': event.type,
        'palisade.tenant.id': event.tenantId,
        'palisade.delivery.count': deliveryCount,
      });
    }
    this.inHand.add(m);
    try {
      await context.with(trace.setSpan(parent, span), () =>
        this.options.handler(event, { subject, streamSequence, deliveryCount, headers: m.headers }),
      );
      m.ack();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      if (deliveryCount >= this.maxDeliver) {
        await this.deadLetter(m, 'handler-failed', [`${(error as Error).name}: ${(error as Error).message}`]);
      } else {
        const delay = this.backoffMs[Math.min(deliveryCount - 1, this.backoffMs.length - 1)];
        this.logger.warn(
          { err: error, durable: this.durable, eventId: event.id, deliveryCount, retryInMs: delay },
          'event handler failed, will retry',
        );
        m.nak(delay);
      }
    } finally {
      this.inHand.delete(m);
      span.end();
    }
  }

  private async refuseForged(m: JsMsg, event: EventEnvelope, problems: string[]): Promise<void> {
    const report: ForgeryReport = {
      subject: m.subject,
      publisher: publisherOfEventSubject(m.subject),
      claimedSource: event.source,
      claimedType: event.type,
      eventId: event.id,
      tenantId: event.tenantId,
      consumer: this.durable,
      streamSequence: m.seq,
      problems,
    };
    try {
      await this.options.onForgery(report);
    } catch (error) {
      const delay = this.backoffMs[Math.min(m.info.redeliveryCount - 1, this.backoffMs.length - 1)];
      this.logger.error({ err: error, durable: this.durable, streamSequence: m.seq }, 'reporting a forged event failed, will retry');
      m.nak(delay);
      return;
    }
    await this.deadLetter(m, 'forged', problems);
  }

  private async deadLetter(m: JsMsg, reason: DeadLetterReason, problems: string[]): Promise<void> {
    const h = natsHeaders();
    for (const key of ['traceparent', 'tracestate']) if (m.headers?.has(key)) h.set(key, m.headers.get(key));
    h.set(DLQ_HEADERS.reason, reason);
    h.set(DLQ_HEADERS.problems, headerValue(problems.join('; ')));
    h.set(DLQ_HEADERS.subject, m.subject);
    h.set(DLQ_HEADERS.stream, EVENTS_STREAM);
    h.set(DLQ_HEADERS.streamSequence, String(m.seq));
    h.set(DLQ_HEADERS.consumer, this.durable);
    h.set(DLQ_HEADERS.deliveries, String(m.info.redeliveryCount));
    try {
      await this.js.publish(this.deadLetterSubject, m.data, {
        headers: h,
        msgID: `${this.durable}:${m.seq}`,
        expect: { streamName: DEAD_LETTER_STREAM },
      });
    } catch (error) {
      const delay = this.backoffMs[Math.min(m.info.redeliveryCount - 1, this.backoffMs.length - 1)];
      this.logger.error({ err: error, durable: this.durable, streamSequence: m.seq }, 'dead-lettering failed, will retry');
      m.nak(delay);
      return;
    }
    m.term();
    this.logger.error(
      { durable: this.durable, subject: m.subject, streamSequence: m.seq, reason, problems, deadLetterSubject: this.deadLetterSubject },
      'event dead-lettered',
    );
  }
}
