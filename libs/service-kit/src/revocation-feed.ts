import { randomBytes } from 'node:crypto';
import type { RevocationList } from '@palisade/auth-verifier';
import { EVENTS_STREAM, eventSubject, validateConsumed, type ServiceName } from '@palisade/contracts';
import type { NatsConnection } from '@palisade/nats';
import type { Logger } from '@palisade/observability';

/** The one event every verifier follows: what the auth service revoked. */
export const REVOCATION_EVENT_TYPE = 'auth.revocation.issued';

export interface RevocationFeedOptions {
  nc: NatsConnection;
  service: ServiceName;
  revocations: RevocationList;
  logger: Logger;
  /** How far back to replay at start: the longest access token lifetime. Default 3600 s. */
  replaySec?: number;
  /** JetStream idle heartbeat; three missed ones and the consumer is created again. Default 1 s. */
  heartbeatMs?: number;
}

interface Revocation {
  target?: string;
  sessionId?: string;
  subject?: string;
  jti?: string;
  expiresAt?: number;
  kid?: string;
  at?: number;
  atMs?: number;
}

/** The revocation's instant in ms: `atMs`, or for events without it the last millisecond of `at` (s). */
function revokedAtMs(r: Revocation): number | undefined {
  if (typeof r.atMs === 'number' && Number.isFinite(r.atMs)) return r.atMs;
  return typeof r.at === 'number' && Number.isFinite(r.at) ? r.at * 1000 + 999 : undefined;
}

const decoder = new TextDecoder();
const ns = (ms: number) => ms * 1_000_000;

/**
 * Feeds `platform.revocations` from the auth service's `auth.revocation.issued` events.
 * Every instance of every service needs every revocation, so this is not a shared
 * durable: each instance creates its own ephemeral JetStream push consumer of that one
 * subject (replaying the last `replaySec`, so a new instance knows what is revoked),
 * delivered to its own inbox without acknowledgements. NATS lets services create only
 * consumers filtered on that subject (deploy/local/nats.sh). Idle heartbeats detect a
 * lost consumer; it is then created again from the last stream sequence seen.
 */
export class RevocationFeed {
  private subscription: { unsubscribe(): void } | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastSeenAt = 0;
  private lastSequence = 0;
  private restarting = false;
  private stopped = false;
  /** Revocations applied since start (for tests and metrics). */
  applied = 0;

  constructor(private readonly options: RevocationFeedOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.subscribe();
    const heartbeat = this.options.heartbeatMs ?? 1000;
    this.watchdog ??= setInterval(() => {
      this.options.revocations.prune(Math.floor(Date.now() / 1000));
      if (!this.restarting && !this.stopped && Date.now() - this.lastSeenAt > 3 * heartbeat) void this.restart();
    }, heartbeat);
    this.watchdog.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private async restart(): Promise<void> {
    this.restarting = true;
    try {
      this.subscription?.unsubscribe();
      this.subscription = undefined;
      await this.subscribe();
      this.options.logger.info({ fromSequence: this.lastSequence + 1 }, 'revocation feed resumed');
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'revocation feed could not resume; retrying');
    } finally {
      this.restarting = false;
    }
  }

  private async subscribe(): Promise<void> {
    const { nc, service } = this.options;
    const suffix = randomBytes(8).toString('hex');
    const deliverSubject = `_INBOX.${service}.revocations.${suffix}`;
    const subscription = nc.subscribe(deliverSubject, { callback: (error, msg) => (error ? undefined : this.receive(msg)) });
    const heartbeat = this.options.heartbeatMs ?? 1000;
    const from =
      this.lastSequence > 0
        ? { deliver_policy: 'by_start_sequence', opt_start_seq: this.lastSequence + 1 }
        : { deliver_policy: 'by_start_time', opt_start_time: new Date(Date.now() - (this.options.replaySec ?? 3600) * 1000).toISOString() };
    try {
      const jsm = await nc.jetstreamManager({ checkAPI: false });
      await jsm.consumers.add(EVENTS_STREAM, {
        name: `${service}-revocations-${suffix}`,
        filter_subject: eventSubject(REVOCATION_EVENT_TYPE),
        deliver_subject: deliverSubject,
        ack_policy: 'none',
        idle_heartbeat: ns(heartbeat),
        inactive_threshold: ns(Math.max(30_000, 10 * heartbeat)),
        mem_storage: true,
        num_replicas: 0,
        ...from,
      } as unknown as Parameters<typeof jsm.consumers.add>[1]);
    } catch (error) {
      subscription.unsubscribe();
      throw error;
    }
    this.subscription = subscription;
    this.lastSeenAt = Date.now();
  }

  private receive(msg: { data: Uint8Array; reply?: string; headers?: { code?: number } }): void {
    this.lastSeenAt = Date.now();
    if (msg.headers?.code === 100 || msg.data.length === 0) return; // idle heartbeat
    // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
    const sequence = Number(msg.reply?.split('.')[5]);
    if (Number.isFinite(sequence) && sequence > this.lastSequence) this.lastSequence = sequence;
    let value: unknown;
    try {
      value = JSON.parse(decoder.decode(msg.data));
    } catch {
      this.options.logger.warn({}, 'revocation feed: message is not JSON, ignored');
      return;
    }
    const validation = validateConsumed(value);
    if (!validation.ok || validation.event.type !== REVOCATION_EVENT_TYPE || validation.event.source !== 'auth') {
      this.options.logger.warn({ problems: validation.ok ? ['not a revocation'] : validation.problems }, 'revocation feed: invalid event ignored');
      return;
    }
    this.apply(validation.event.tenantId, validation.event.data as Revocation);
  }

  private apply(tenantId: string, r: Revocation): void {
    const list = this.options.revocations;
    const atMs = revokedAtMs(r);
    if (r.target === 'session' && typeof r.sessionId === 'string' && atMs !== undefined) list.revokeSession(r.sessionId, atMs);
    else if (r.target === 'subject' && typeof r.subject === 'string' && atMs !== undefined) list.revokeSubject(tenantId, r.subject, atMs);
    else if (r.target === 'token' && typeof r.jti === 'string' && typeof r.expiresAt === 'number') list.revokeToken(r.jti, r.expiresAt);
    else if (r.target === 'key' && typeof r.kid === 'string') list.revokeKey(r.kid);
    else {
      this.options.logger.warn({ target: r.target }, 'revocation feed: unknown revocation ignored');
      return;
    }
    this.applied++;
  }
}
