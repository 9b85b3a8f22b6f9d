import { context, propagation, trace, type Context, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export type TraceExporterName = 'none' | 'console' | 'memory';

let provider: NodeTracerProvider | undefined;
let memoryExporter: InMemorySpanExporter | undefined;

/**
 * Register the process's tracer provider (once): W3C trace context, async-local
 * context, and an exporter chosen by configuration. Returns the service's tracer.
 */
export function initTracing(service: string, exporter: TraceExporterName = 'none'): Tracer {
  if (!provider) {
    const processors: SpanProcessor[] = [];
    if (exporter === 'console') processors.push(new BatchSpanProcessor(new ConsoleSpanExporter() as SpanExporter));
    if (exporter === 'memory') {
      memoryExporter = new InMemorySpanExporter();
      processors.push(new SimpleSpanProcessor(memoryExporter));
    }
    // Nothing exported: spans are not recorded (no attributes, timings or events kept per
    // request) but still get ids, so trace context travels between services and log lines.
    provider = new NodeTracerProvider({ spanProcessors: processors, ...(exporter === 'none' ? { sampler: new AlwaysOffSampler() } : {}) });
    provider.register({
      contextManager: new AsyncLocalStorageContextManager(),
      propagator: new W3CTraceContextPropagator(),
    });
  }
  return trace.getTracer(`palisade-${service}`);
}

/** Spans kept in memory when the exporter is 'memory' (for inspection tools and tests). */
export function finishedSpans() {
  return memoryExporter?.getFinishedSpans() ?? [];
}

export async function shutdownTracing(): Promise<void> {
  await provider?.shutdown();
  provider = undefined;
  // unregistered too, so a later initTracing registers its own provider (the API keeps the first otherwise)
  trace.disable();
  context.disable();
  propagation.disable();
}

/** Carrier for W3C `traceparent` / `tracestate` headers. */
export function injectTraceHeaders(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

export function extractTraceContext(headers: Record<string, string | undefined>): Context {
  return propagation.extract(context.active(), headers);
}
