import { timingSafeEqual } from 'node:crypto';
import type { NatsConnection } from 'nats';
import {
  isSealedPersonal,
  TRANSPORT_KEYS_SUBJECT,
  transportKeysReplySchema,
  type EventEnvelope,
  type Personal,
  type PersonalSealer,
} from '@palisade/contracts';
import { silentLogger, type NatsLogger } from './logger';
import { rpcRequest } from './rpc';
import { transportKeyId, TransportSealingEpoch } from './transport-sealing';

export interface TransportPersonalSealerOptions {
  /** The connection, once there is one (a service connects to NATS after PostgreSQL). */
  nats: () => NatsConnection | undefined;
  /** How long the audit service may take to answer a key request. */
  timeoutMs: number;
  /** Used while no audit transport key can be had (NatsPersonalSealer: audit seals over NATS, else the write fails closed). */
  fallback: PersonalSealer;
  /** How often the audit key is asked again (default 5 minutes; in the background while the one held is usable). */
  refreshMs?: number;
  /** After a failed key request, how long to use the fallback before asking again (default 10 s). */
  retryMs?: number;
  /** An epoch (one HPKE setup) lasts at most this long (default 10 minutes)... */
  epochMs?: number;
  /** ...and seals at most this many members (default 1,000,000; far below AES-GCM's 2^32 random nonces). */
  epochMaxMembers?: number;
  logger?: NatsLogger;
  now?: () => number;
}

/** The audit transport key a producer seals to. */
export interface AuditKey {
  kid: string;
  publicKey: Buffer;
  notAfterMs: number;
  fetchedAt: number;
}

const DEFAULT_REFRESH_MS = 5 * 60_000;
const DEFAULT_RETRY_MS = 10_000;
const DEFAULT_EPOCH_MS = 10 * 60_000;
const DEFAULT_EPOCH_MAX_MEMBERS = 1_000_000;

/**
 * Seals `personal` locally, for the audit service alone (contracts
 * `transportSealedPersonalSchema`): no network hop on the write path. It holds the audit
 * service's current transport public key (TRANSPORT_KEYS_SUBJECT, asked at the first
 * personal data, then again every `refreshMs` in the background and whenever the key
 * passes its `notAfter`), and per epoch (`epochMs` or `epochMaxMembers`, or a new key)
 * runs one HPKE setup whose exported key seals each member with AES-256-GCM, bound to its
 * event id, subject, key and encapsulation. The audit service opens the members at ingest
 * and seals them under the data subjects' keys.
 *
 * Trust: the reply is validated (schema, key id = the key's thumbprint) and trusted as
 * audit's only because NATS permissions let only the audit service answer
 * palisade.rpc.audit.> (deploy/local/nats.sh): nothing else vouches for the key (whoever
 * could answer as audit could read what is sealed to a key of theirs, and audit would
 * refuse those members at ingest). No private or exported key is held in anything logged.
 *
 * When no usable key can be had (audit down at first use, a reply that does not check
 * out, every key past its `notAfter`), `fallback` seals (audit over NATS), which fails
 * closed: the write fails, or the model-call texts are withheld, rather than stored in
 * plaintext.
 */
export class TransportPersonalSealer implements PersonalSealer {
  private key: AuditKey | undefined;
  private fetching: Promise<AuditKey | undefined> | undefined;
  private failedAt: number | undefined;
  private epoch: TransportSealingEpoch | undefined;
  private starting: Promise<TransportSealingEpoch> | undefined;
  private readonly now: () => number;
  private readonly logger: NatsLogger;

  constructor(private readonly options: TransportPersonalSealerOptions) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? silentLogger;
  }

  async seal(events: readonly EventEnvelope[]): Promise<EventEnvelope[]> {
    if (!events.some((e) => e.personal && !isSealedPersonal(e.personal))) return [...events];
    const epoch = await this.currentEpoch();
    if (!epoch) return this.options.fallback.seal(events);
    return events.map((e) => (e.personal && !isSealedPersonal(e.personal) ? { ...e, personal: epoch.seal(e, e.personal as Personal) } : e));
  }

  /** The epoch to seal with now, or none (no usable audit key: the fallback seals). */
  private async currentEpoch(): Promise<TransportSealingEpoch | undefined> {
    const key = await this.usableKey();
    if (!key) return undefined;
    const now = this.now();
    const e = this.epoch;
    if (e && e.kid === key.kid && now - e.startedAt < (this.options.epochMs ?? DEFAULT_EPOCH_MS) && e.sealed < (this.options.epochMaxMembers ?? DEFAULT_EPOCH_MAX_MEMBERS)) return e;
    // one HPKE setup at a time: concurrent appends share the new epoch
    this.starting ??= TransportSealingEpoch.start(key.kid, key.publicKey, now).finally(() => (this.starting = undefined));
    const started = await this.starting;
    if (started.kid !== key.kid) return this.currentEpoch();
    this.epoch = started;
    return started;
  }

  /**
   * The audit key, asked again in the background once it is `refreshMs` old, and on the
   * path only when none is usable (none yet, or past its `notAfter`); none while a failed
   * request is less than `retryMs` ago.
   */
  private async usableKey(): Promise<AuditKey | undefined> {
    const now = this.now();
    const key = this.key;
    if (key && now < key.notAfterMs) {
      if (now - key.fetchedAt >= (this.options.refreshMs ?? DEFAULT_REFRESH_MS) && !this.recentlyFailed(now)) void this.fetch();
      return key;
    }
    if (this.recentlyFailed(now)) return undefined;
    return this.fetch();
  }

  private recentlyFailed(now: number): boolean {
    return this.failedAt !== undefined && now - this.failedAt < (this.options.retryMs ?? DEFAULT_RETRY_MS);
  }

  /** Ask for the keys (one request at a time); never rejects. */
  private fetch(): Promise<AuditKey | undefined> {
    this.fetching ??= this.ask()
      .then(
        (key) => {
          this.key = key;
          this.failedAt = undefined;
          return key;
        },
        (error: unknown) => {
          this.failedAt = this.now();
          this.logger.warn({ reason: reasonOf(error) }, 'no audit transport key: personal data is sealed by the audit service over NATS until one can be had');
          const held = this.key;
          return held && this.now() < held.notAfterMs ? held : undefined;
        },
      )
      .finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  private async ask(): Promise<AuditKey> {
    const nc = this.options.nats();
    if (!nc) throw new Error('not connected to NATS');
    const answer = await rpcRequest(nc, TRANSPORT_KEYS_SUBJECT, {}, { timeoutMs: this.options.timeoutMs });
    return keyOf(answer, this.now());
  }
}

/**
 * The key to seal to from a TRANSPORT_KEYS_SUBJECT reply: valid by the schema, its id the
 * thumbprint of its public key, usable now (before `notAfter`); the newest such. Throws
 * otherwise.
 */
export function keyOf(answer: unknown, now: number): AuditKey {
  const reply = transportKeysReplySchema.safeParse(answer);
  if (!reply.success) throw new Error('the transport keys reply is malformed');
  let best: (AuditKey & { createdAtMs: number }) | undefined;
  for (const k of reply.data.keys) {
    const publicKey = Buffer.from(k.x, 'base64url');
    if (publicKey.length !== 32 || !sameText(transportKeyId(publicKey), k.kid)) throw new Error('a transport key id is not its key thumbprint');
    const notAfterMs = Date.parse(k.notAfter);
    const createdAtMs = Date.parse(k.createdAt);
    if (notAfterMs > now && (!best || createdAtMs > best.createdAtMs)) best = { kid: k.kid, publicKey, notAfterMs, fetchedAt: now, createdAtMs };
  }
  if (!best) throw new Error('no transport key is usable now');
  const { createdAtMs: _createdAtMs, ...key } = best;
  return key;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
