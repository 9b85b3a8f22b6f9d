import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';
import { extractTraceContext, histogram, type Registry } from '@palisade/observability';

/**
 * One span and one latency observation per HTTP request. The span continues the
 * caller's W3C trace context; labels carry the route pattern, never ids from the path.
 */
export function httpTelemetry(tracer: Tracer, metrics: Registry) {
  const duration = histogram(metrics, 'palisade_http_request_duration_seconds', 'HTTP request latency', ['method', 'route', 'status']);
  return (req: Request, res: Response, next: NextFunction): void => {
    const parent = extractTraceContext(req.headers as Record<string, string | undefined>);
    const span = tracer.startSpan(`HTTP ${req.method}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method } }, parent);
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      span.updateName(`HTTP ${req.method} ${route}`);
      span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      duration.observe({ method: req.method, route, status: String(res.statusCode) }, Number(process.hrtime.bigint() - started) / 1e9);
    });
    context.with(trace.setSpan(parent, span), next);
  };
}
