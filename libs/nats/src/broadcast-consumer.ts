import { AckPolicy, DeliverPolicy, type NatsConnection, type Subscription } from 'nats';
import { eventOriginProblems, EVENTS_STREAM, validateConsumed, type EventEnvelope, type ServiceName } from '@palisade/contracts';
import { silentLogger, type NatsLogger } from './logger';

export interface EventBroadcastOptions {
  nc: NatsConnection;
  /** The consuming service: the durable is `<service>-<consumer>` (register it in nats-durables.txt). */
  service: ServiceName;
  consumer: string;
  /** Subject of PALISADE_EVENTS to receive, e.g. `palisade.events.policy.>`. */
  filterSubject: string;
  handler: (event: EventEnvelope) => void;
  logger?: NatsLogger;
}

const CONSUMER_NAME = /^[a-z][a-z0-9-]{0,63}$/;
const decoder = new TextDecoder();

/**
 * Every instance of a service receives every new event: a durable JetStream push
 * consumer (no acknowledgements, new events only) delivers to `_INBOX.<service>.<consumer>`,
 * the service's own inbox that only it may read, and each instance subscribes there
 * without a queue group. For in-memory state of each instance (cache invalidation),
 * not for work that must happen once: delivery is at most once per instance, so the
 * state it guards must also expire by itself. An event that claims another origin than
 * the service whose subject carried it (`eventOriginProblems`) is ignored; the audit
 * service's durable consumer receives the same message and reports the forgery.
 */
export class EventBroadcastSubscription {
  readonly durable: string;
  readonly deliverSubject: string;
  private subscription: Subscription | undefined;
  private readonly logger: NatsLogger;

  constructor(private readonly options: EventBroadcastOptions) {
    if (!CONSUMER_NAME.test(options.consumer)) throw new Error(`invalid consumer name "${options.consumer}"`);
    this.durable = `${options.service}-${options.consumer}`;
    this.deliverSubject = `_INBOX.${options.service}.${options.consumer}`;
    this.logger = options.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    if (this.subscription) return;
    this.subscription = this.options.nc.subscribe(this.deliverSubject);
    const jsm = await this.options.nc.jetstreamManager({ checkAPI: false });
    try {
      await jsm.consumers.add(EVENTS_STREAM, {
        durable_name: this.durable,
        deliver_subject: this.deliverSubject,
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.New,
        filter_subject: this.options.filterSubject,
      });
    } catch (error) {
      if (!/already (exists|in use)/i.test((error as Error).message)) throw error;
    }
    void this.run(this.subscription);
  }

  async stop(): Promise<void> {
    const sub = this.subscription;
    this.subscription = undefined;
    if (sub) await sub.drain().catch(() => undefined);
  }

  private async run(sub: Subscription): Promise<void> {
    for await (const m of sub) {
      if (m.data.length === 0) continue; // heartbeats and flow control
      let value: unknown;
      try {
        value = JSON.parse(decoder.decode(m.data));
      } catch {
        continue;
      }
      const validation = validateConsumed(value);
      if (!validation.ok) {
        this.logger.warn({ durable: this.durable, problems: validation.problems }, 'broadcast event ignored: invalid');
        continue;
      }
      const forgery = eventOriginProblems(m.subject, validation.event);
      if (forgery.length > 0) {
        this.logger.warn({ durable: this.durable, subject: m.subject, problems: forgery }, 'broadcast event ignored: forged origin');
        continue;
      }
      try {
        this.options.handler(validation.event);
      } catch (error) {
        this.logger.error({ err: error, durable: this.durable }, 'broadcast handler failed');
      }
    }
  }
}
