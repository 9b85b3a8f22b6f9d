import { context, propagation, trace, type Span, type SpanOptions, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { AlwaysOffSampler, BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { headers, type Msg, type NatsConnection, type SubscriptionOptions } from 'nats';
import { serveRpc } from './rpc-server';

// The SERVER span of serveRpc on the answer path, without a NATS server: the span's
// attributes are given only to a span that is recorded (a non-recording one, with no
// trace exporter, costs no attribute copy), and the handler runs in the span either way,
// so the caller's trace context still reaches the handler.
const SUBJECT = 'palisade.rpc.billing.quote';
const PARENT = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };

/** A connection whose one subscription is answered by hand: returns what the handler's reply was. */
function fakeConnection() {
  let callback: SubscriptionOptions['callback'];
  const nc = {
    subscribe: (_subject: string, options: SubscriptionOptions) => {
      callback = options.callback;
      return { isClosed: () => true, drain: async () => undefined };
    },
  } as unknown as NatsConnection;
  const ask = (payload: unknown): unknown => {
    let reply: unknown;
    const h = headers();
    h.set('traceparent', PARENT.traceparent);
    const msg = {
      subject: SUBJECT,
      reply: '_INBOX.credential.x.1',
      data: new TextEncoder().encode(JSON.stringify(payload)),
      headers: h,
      respond: (data: Uint8Array) => {
        reply = JSON.parse(new TextDecoder().decode(data));
        return true;
      },
    } as unknown as Msg;
    callback!(null, msg);
    return reply;
  };
  return { nc, ask };
}

/** The tracer, with what it was asked to start and the spans it returned. */
function watched(tracer: Tracer) {
  const options: SpanOptions[] = [];
  const spans: Span[] = [];
  const wrapper: Tracer = {
    startSpan: (name, o, ctx) => {
      options.push({ ...o });
      const span = tracer.startSpan(name, o, ctx);
      spans.push(span);
      return span;
    },
    startActiveSpan: tracer.startActiveSpan.bind(tracer),
  };
  return { wrapper, options, spans };
}

const handler = () => {
  const active = trace.getActiveSpan();
  return { traceId: active?.spanContext().traceId ?? null, recording: active?.isRecording() ?? null };
};

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(() => {
  context.disable();
  propagation.disable();
});

describe('serveRpc SERVER span', () => {
  it('when spans are not recorded (no exporter), starts the span without attributes, and the handler still runs in it, in the caller\'s trace', () => {
    const provider = new BasicTracerProvider({ sampler: new AlwaysOffSampler() });
    const { wrapper, options, spans } = watched(provider.getTracer('unit'));
    const { nc, ask } = fakeConnection();
    serveRpc(nc, { service: 'billing', handlers: { [SUBJECT]: handler }, tracer: wrapper });

    expect(ask({ units: 1 })).toEqual({ result: { traceId: '0af7651916cd43dd8448eb211c80319c', recording: false } });
    expect(options).toHaveLength(1);
    expect(options[0].attributes).toBeUndefined();
    expect(spans[0].isRecording()).toBe(false);
    expect(spans[0].spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
  });

  it('when spans are recorded, the span has the RPC attributes', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const { nc, ask } = fakeConnection();
    serveRpc(nc, { service: 'billing', handlers: { [SUBJECT]: handler }, tracer: provider.getTracer('unit') });

    expect(ask({ units: 1 })).toEqual({ result: { traceId: '0af7651916cd43dd8448eb211c80319c', recording: true } });
    const [served] = exporter.getFinishedSpans();
    expect(served.name).toBe(`process ${SUBJECT}`);
    expect(served.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(served.attributes).toEqual({ 'rpc.system': 'nats', 'messaging.system': 'nats', 'messaging.destination.name': SUBJECT });
  });
});
