import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import CircuitBreaker from 'opossum';
import type { ProviderDefinition } from '../catalog/catalog.events';

/** A provider's 2xx response, its headers in: the body read whole or as byte chunks. */
export interface UpstreamResponse {
  status: number;
  text(): Promise<string>;
  body: AsyncIterable<Uint8Array>;
  /** Stops reading (the caller went away, the stream ended early). */
  cancel(): void;
}

/** An attempt that failed before any byte reached the caller: the next candidate may be tried. */
export class UpstreamFailure extends Error {
  constructor(
    readonly reason: 'network' | 'timeout' | 'status' | 'breaker-open',
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(`provider attempt failed: ${reason}${status ? ` ${status}` : ''}`);
  }
}

/** A provider's refusal of the request itself (4xx other than 408/409/429): passed to the caller, not retried. */
export class UpstreamRejection extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`provider refused the request: ${status}`);
  }
}

export interface UpstreamCall {
  tenantId: string;
  provider: ProviderDefinition;
  /** Breaker key part: the provider's model. */
  upstreamModel: string;
  body: Record<string, unknown>;
  apiKey?: string;
  /** The provider's route below its base URL: by default `/messages` (Anthropic kind) or `/chat/completions`; `/embeddings`. */
  path?: '/embeddings';
  /** Aborts the attempt and its body (the request's deadline, or the caller going away). */
  signal: AbortSignal;
}

export interface UpstreamOptions {
  /** Past this without response headers, the attempt fails (the body then runs until the request's deadline). */
  connectTimeoutMs: number;
  /** Keep-alive connections per provider host. */
  maxSockets?: number;
  /** Breaker: failure rate that opens it, how long it stays open, least calls before it judges. */
  errorThresholdPercentage?: number;
  resetTimeoutMs?: number;
  volumeThreshold?: number;
}

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  if (Array.isArray(header)) header = header[0];
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Sends one attempt to a provider through its circuit breaker (opossum, one per tenant,
 * provider and model): resolves with the response once its headers are in (2xx), throws
 * `UpstreamFailure` (network, timeout, 408/409/429/5xx, breaker open: try the next
 * candidate) or `UpstreamRejection` (the provider refuses the request itself: the caller's
 * error). A provider's 4xx does not count against its breaker.
 */
export class Upstream {
  private readonly breakers = new Map<string, CircuitBreaker<[UpstreamCall], UpstreamResponse>>();
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(private readonly options: UpstreamOptions) {
    const agent = { keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: 'lifo' as const };
    this.http = new HttpAgent(agent);
    this.https = new HttpsAgent({ ...agent, minVersion: 'TLSv1.2' });
  }

  async send(call: UpstreamCall): Promise<UpstreamResponse> {
    const breaker = this.breakerFor(`${call.tenantId}/${call.provider.providerId}/${call.upstreamModel}`);
    try {
      return await breaker.fire(call);
    } catch (error) {
      if (error instanceof UpstreamFailure || error instanceof UpstreamRejection) throw error;
      if ((error as { code?: string }).code === 'EOPENBREAKER') throw new UpstreamFailure('breaker-open');
      throw new UpstreamFailure(call.signal.aborted ? 'timeout' : 'network');
    }
  }

  /** The breakers' states, for readiness details and metrics. */
  states(): Record<string, 'open' | 'half-open' | 'closed'> {
    return Object.fromEntries([...this.breakers].map(([k, b]) => [k, b.opened ? 'open' : b.halfOpen ? 'half-open' : 'closed']));
  }

  shutdown(): void {
    for (const b of this.breakers.values()) b.shutdown();
    this.breakers.clear();
    this.http.destroy();
    this.https.destroy();
  }

  private breakerFor(key: string): CircuitBreaker<[UpstreamCall], UpstreamResponse> {
    let breaker = this.breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker((call: UpstreamCall) => this.attempt(call), {
        timeout: false,
        errorThresholdPercentage: this.options.errorThresholdPercentage ?? 50,
        resetTimeout: this.options.resetTimeoutMs ?? 10_000,
        volumeThreshold: this.options.volumeThreshold ?? 5,
        rollingCountTimeout: 10_000,
        errorFilter: (error: unknown) => error instanceof UpstreamRejection,
      });
      this.breakers.set(key, breaker);
    }
    return breaker;
  }

  /** One HTTP(S) request on a keep-alive connection (node:http: no redirects followed, less overhead than fetch). */
  private attempt(call: UpstreamCall): Promise<UpstreamResponse> {
    const { provider } = call;
    const path = call.path ?? (provider.kind === 'anthropic' ? '/messages' : '/chat/completions');
    const payload = JSON.stringify(call.body);
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), accept: call.body.stream ? 'text/event-stream' : 'application/json' };
    if (provider.kind === 'anthropic') {
      headers['anthropic-version'] = '2023-06-01';
      if (call.apiKey) headers['x-api-key'] = call.apiKey;
    } else if (call.apiKey) {
      headers.authorization = `Bearer ${call.apiKey}`;
    }
    const url = new URL(`${provider.baseUrl.replace(/\/+$/, '')}${path}`);
    const secure = url.protocol === 'https:';
    return new Promise<UpstreamResponse>((resolve, reject) => {
      if (call.signal.aborted) return reject(new UpstreamFailure('timeout'));
      let timedOut = false;
      const req = (secure ? httpsRequest : httpRequest)(url, { method: 'POST', headers, agent: secure ? this.https : this.http, signal: call.signal }, (res: IncomingMessage) => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          resolve({ status, text: () => textOf(res), body: res, cancel: () => res.destroy() });
          return;
        }
        void textOf(res)
          .catch(() => '')
          .then((text) => {
            if ([408, 409, 429].includes(status) || status >= 500) reject(new UpstreamFailure('status', status, retryAfterMs(res.headers['retry-after'])));
            else reject(new UpstreamRejection(status, text.slice(0, 4096)));
          });
      });
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
      }, this.options.connectTimeoutMs);
      req.on('error', () => {
        clearTimeout(timer);
        reject(new UpstreamFailure(timedOut || call.signal.aborted ? 'timeout' : 'network'));
      });
      req.end(payload);
    });
  }
}

async function textOf(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
