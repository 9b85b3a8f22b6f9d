import CircuitBreaker from 'opossum';
import type { ProviderDefinition } from '../catalog/catalog.events';

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
  /** Aborts the attempt (the request's deadline, or the caller going away). */
  signal: AbortSignal;
}

export interface UpstreamOptions {
  /** Past this without response headers, the attempt fails. */
  connectTimeoutMs: number;
  /** Breaker: failure rate that opens it, how long it stays open, least calls before it judges. */
  errorThresholdPercentage?: number;
  resetTimeoutMs?: number;
  volumeThreshold?: number;
}

function retryAfterMs(header: string | null): number | undefined {
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
  private readonly breakers = new Map<string, CircuitBreaker<[UpstreamCall], Response>>();

  constructor(private readonly options: UpstreamOptions) {}

  async send(call: UpstreamCall): Promise<Response> {
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
  }

  private breakerFor(key: string): CircuitBreaker<[UpstreamCall], Response> {
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

  private async attempt(call: UpstreamCall): Promise<Response> {
    const { provider } = call;
    const path = provider.kind === 'anthropic' ? '/messages' : '/chat/completions';
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: call.body.stream ? 'text/event-stream' : 'application/json' };
    if (provider.kind === 'anthropic') {
      headers['anthropic-version'] = '2023-06-01';
      if (call.apiKey) headers['x-api-key'] = call.apiKey;
    } else if (call.apiKey) {
      headers.authorization = `Bearer ${call.apiKey}`;
    }
    const signal = AbortSignal.any([call.signal, AbortSignal.timeout(this.options.connectTimeoutMs)]);
    let response: Response;
    try {
      response = await fetch(`${provider.baseUrl.replace(/\/+$/, '')}${path}`, { method: 'POST', headers, body: JSON.stringify(call.body), signal, redirect: 'error' });
    } catch {
      throw new UpstreamFailure(signal.aborted ? 'timeout' : 'network');
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    if ([408, 409, 429].includes(response.status) || response.status >= 500) {
      throw new UpstreamFailure('status', response.status, retryAfterMs(response.headers.get('retry-after')));
    }
    throw new UpstreamRejection(response.status, text.slice(0, 4096));
  }
}
