import { connect, type ConnectionOptions, type NatsConnection } from 'nats';
import { TRUST_DOMAIN } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { silentLogger, type NatsLogger } from './logger';

export interface ConnectNatsOptions {
  /** e.g. tls://127.0.0.1:4223 (NATS_URL); several for a cluster. */
  servers: string | string[];
  /** The certificate presented to NATS and the CA that NATS' certificate must chain to. */
  identity: ServiceIdentity;
  /** Connection name shown by the server's monitor, e.g. the service name. */
  name: string;
  logger?: NatsLogger;
  /** Keep trying when the first connection fails (a service starting before NATS). Default false. */
  waitOnFirstConnect?: boolean;
  /** Timeout of the first connection attempt. Default 5 s. */
  timeoutMs?: number;
  /**
   * Capture an Error stack at every request and subscription, to show where a failed
   * request came from (nats.js `noAsyncTraces: false`). Costs two Error objects per
   * request; default false (rpcRequest turns failures into PalisadeErrors anyway).
   */
  asyncTraces?: boolean;
}

/** The inbox prefix each connection made by `connectNats` was given (its replies arrive under it). */
const inboxPrefixes = new WeakMap<NatsConnection, string>();

/** Where replies to `nc`'s requests must arrive: the prefix it was connected with, else NATS's default. */
export function inboxPrefixOf(nc: NatsConnection): string {
  return inboxPrefixes.get(nc) ?? '_INBOX';
}

/**
 * Where the connection receives replies. NATS permits a service to subscribe only to
 * `_INBOX.<service>.>` (deploy/local/nats.sh), so no service can read another's replies.
 */
export function inboxPrefixFor(spiffeId: string | undefined): string {
  const prefix = `spiffe://${TRUST_DOMAIN}/service/`;
  return spiffeId?.startsWith(prefix) ? `_INBOX.${spiffeId.slice(prefix.length)}` : '_INBOX';
}

/**
 * nats.js TLS options that read the identity's current certificate whenever a
 * (re)connection starts its TLS handshake: nats.js copies the properties of this
 * object at each connect, so a renewed certificate is used from the next reconnection
 * on, while established connections keep running.
 */
export function identityTlsOptions(identity: ServiceIdentity): NonNullable<ConnectionOptions['tls']> {
  const tls = {
    minVersion: 'TLSv1.3',
    get cert() {
      return identity.current().certPem;
    },
    get key() {
      return identity.current().keyPem;
    },
    get ca() {
      return identity.current().caPem;
    },
  };
  return tls as NonNullable<ConnectionOptions['tls']>;
}

/** Reconnect forever, every 1 s plus up to 1 s of jitter (2 s for TLS), so a fleet does not stampede. */
export const RECONNECT_OPTIONS = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 1000,
  reconnectJitter: 1000,
  reconnectJitterTLS: 2000,
  pingInterval: 20_000,
  maxPingOut: 3,
} as const satisfies Partial<ConnectionOptions>;

/** A mutually authenticated TLS connection to NATS as `identity`. */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const logger = options.logger ?? silentLogger;
  const nc = await connect({
    servers: options.servers,
    name: options.name,
    tls: identityTlsOptions(options.identity),
    inboxPrefix: inboxPrefixFor(options.identity.current().spiffeId),
    timeout: options.timeoutMs ?? 5000,
    waitOnFirstConnect: options.waitOnFirstConnect ?? false,
    noAsyncTraces: !(options.asyncTraces ?? false),
    ...RECONNECT_OPTIONS,
  });
  inboxPrefixes.set(nc, inboxPrefixFor(options.identity.current().spiffeId));
  logger.info({ server: nc.getServer(), name: options.name, spiffeId: options.identity.current().spiffeId }, 'NATS connected');
  void logStatus(nc, logger);
  return nc;
}

async function logStatus(nc: NatsConnection, logger: NatsLogger): Promise<void> {
  for await (const s of nc.status()) {
    switch (s.type) {
      case 'disconnect':
        logger.warn({ server: s.data }, 'NATS disconnected');
        break;
      case 'reconnect':
        logger.info({ server: s.data }, 'NATS reconnected');
        break;
      case 'error':
        logger.error({ err: s.data }, 'NATS error');
        break;
      case 'ldm':
        logger.warn({ server: s.data }, 'NATS server entering lame duck mode');
        break;
      default:
        break;
    }
  }
}
