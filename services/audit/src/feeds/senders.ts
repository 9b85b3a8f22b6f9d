import { request, Agent } from 'node:https';
import { connect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import { blockedHostProblem, guardedLookup } from './feed-destination';
import { hecOutcome, networkFailure, type FailureClass } from './feed-policy';

/** Why a delivery attempt failed; `retryAfterMs` when the SIEM said so. Never holds a token. */
export class DeliveryError extends Error {
  constructor(
    readonly failure: FailureClass,
    message: string,
    readonly retryable = true,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Sends one batch; resolves once the SIEM acknowledged it (HEC) or it is written and flushed (syslog). */
export interface FeedSender {
  send(payload: string): Promise<void>;
  close(): void;
}

const REQUEST_TIMEOUT_MS = 30_000;
/** How long a fresh syslog connection waits for a late refusal of the handshake. */
const SETTLE_MS = 300;

/** The event endpoint under an HEC base URL (a URL that already names it is kept). */
export function hecEndpoint(url: string): URL {
  const base = url.replace(/\/+$/, '');
  if (/\/services\/collector\/event$/.test(base)) return new URL(base);
  if (/\/services\/collector$/.test(base)) return new URL(`${base}/event`);
  return new URL(`${base}/services/collector/event`);
}

/** Splunk HTTP Event Collector: POST {url}/services/collector/event with `Authorization: Splunk <token>`. */
export class HecSender implements FeedSender {
  private readonly endpoint: URL;
  private readonly agent: Agent;

  private readonly refused: string | undefined;

  /** `allowInternal`: loopback and link-local destinations allowed (AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS). */
  constructor(url: string, private readonly token: string, caPem?: string, allowInternal = false) {
    this.endpoint = hecEndpoint(url);
    this.refused = allowInternal ? undefined : blockedHostProblem(this.endpoint.hostname);
    const lookup = guardedLookup(allowInternal);
    this.agent = new Agent({ keepAlive: true, maxSockets: 1, minVersion: 'TLSv1.2', ...(caPem ? { ca: caPem } : {}), ...(lookup ? { lookup } : {}) });
  }

  send(payload: string): Promise<void> {
    if (this.refused) return Promise.reject(new DeliveryError('network', `feed destination refused: ${this.refused}`, false));
    return new Promise((resolve, reject) => {
      const req = request(
        this.endpoint,
        {
          method: 'POST',
          agent: this.agent,
          headers: { authorization: `Splunk ${this.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => body.length < 4096 && (body += c));
          res.on('error', (e) => reject(new DeliveryError(networkFailure(e), e.message)));
          res.on('end', () => {
            const retryAfter = res.headers['retry-after'];
            const outcome = hecOutcome(res.statusCode ?? 0, body, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now());
            if (outcome.ok) resolve();
            else reject(new DeliveryError(outcome.failure, outcome.detail, outcome.retryable, outcome.retryAfterMs));
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (e: Error & { code?: string }) => reject(new DeliveryError(networkFailure(e), e.code ? `${e.code}: ${e.message}` : e.message)));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Syslog over TLS (RFC 5425): one connection, verified against the feed's CA (or the
 * system's), TLS 1.2 or later. TCP syslog has no application acknowledgement: a batch
 * counts as delivered once written and flushed to the socket, so a crash may resend it
 * (at least once; each message names its partition, seq and event id).
 */
export class SyslogSender implements FeedSender {
  private socket: TLSSocket | undefined;
  private connecting: Promise<TLSSocket> | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly caPem?: string,
    private readonly client?: { cert: string; key: string },
    /** Loopback and link-local destinations allowed (AUDIT_FEED_ALLOW_INTERNAL_DESTINATIONS). */
    private readonly allowInternal = false,
  ) {}

  private open(): Promise<TLSSocket> {
    const refused = this.allowInternal ? undefined : blockedHostProblem(this.host);
    if (refused) return Promise.reject(new DeliveryError('network', `feed destination refused: ${refused}`, false));
    const lookup = guardedLookup(this.allowInternal);
    if (this.socket && !this.socket.destroyed && this.socket.writable) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<TLSSocket>((resolve, reject) => {
      const socket = connect({
        host: this.host,
        port: this.port,
        ...(isIP(this.host) ? {} : { servername: this.host }),
        ...(this.caPem ? { ca: this.caPem } : {}),
        ...(this.client ? { cert: this.client.cert, key: this.client.key } : {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        timeout: REQUEST_TIMEOUT_MS,
        ...(lookup ? { lookup } : {}),
      });
      const fail = (e: Error & { code?: string }) => {
        reject(new DeliveryError(networkFailure(e), e.code ? `${e.code}: ${e.message}` : e.message));
        socket.destroy();
      };
      socket.on('error', fail);
      socket.once('timeout', () => fail(Object.assign(new Error('TLS connection timed out'), { code: 'ETIMEDOUT' })));
      socket.once('secureConnect', () => {
        socket.setTimeout(0);
        // TLS 1.3: a server refuses our client certificate (or its absence) only after the
        // handshake completed on our side; what we wrote first would count as sent and be
        // lost. Syslog receivers never write, so a fresh connection first waits a moment
        // for such a refusal (an alert and close) before anything goes over it.
        const settled = setTimeout(() => {
          socket.off('error', fail);
          socket.off('close', closed);
          socket.setKeepAlive(true, 10_000);
          // From now on an error or close just ends this connection (the next send reconnects).
          socket.on('error', () => socket.destroy());
          this.socket = socket;
          resolve(socket);
        }, SETTLE_MS);
        const closed = () => {
          clearTimeout(settled);
          reject(new DeliveryError('tls', 'the receiver closed the connection right after the TLS handshake (client certificate refused?)'));
        };
        socket.once('close', closed);
        socket.on('data', () => undefined);
      });
    }).finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  async send(payload: string): Promise<void> {
    const socket = await this.open();
    await new Promise<void>((resolve, reject) => {
      const onClose = () => reject(new DeliveryError('network', 'connection closed while writing'));
      socket.once('close', onClose);
      socket.write(payload, 'utf8', (error) => {
        socket.off('close', onClose);
        if (error) {
          socket.destroy();
          reject(new DeliveryError(networkFailure(error), error.message));
        } else resolve();
      });
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
