import { Writable } from 'node:stream';
import { context, trace } from '@opentelemetry/api';
import { createLogger, createMetrics, counter, extractTraceContext, finishedSpans, initTracing, injectTraceHeaders, redact, REDACTED, shutdownTracing } from './index';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, destination };
}

describe('redaction', () => {
  it('replaces sensitive keys at any depth and keeps the rest', () => {
    const input = {
      user: 'u-1',
      password: 'hunter2',
      nested: { deeper: [{ apiKey: 'pk_live_x', note: 'ok' }], Authorization: 'Bearer abc', refresh_token: 't' },
      privateKey: '-----BEGIN',
      value: 'the secret value',
      tokenId: 't-1',
      keyId: 'k-1',
    };
    expect(redact(input)).toEqual({
      user: 'u-1',
      password: REDACTED,
      nested: { deeper: [{ apiKey: REDACTED, note: 'ok' }], Authorization: REDACTED, refresh_token: REDACTED },
      privateKey: REDACTED,
      value: REDACTED,
      tokenId: 't-1',
      keyId: 'k-1',
    });
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    expect(redact(a)).toEqual({ name: 'a', self: '[Circular]' });
  });
});

describe('logger', () => {
  it('writes JSON with service and level, never the secret', async () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: 'credential', destination });
    log.info({ secretId: 's-1', secret: 'MARKER-123', headers: { authorization: 'Bearer MARKER-456' } }, 'secret created');
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]);
    expect(entry).toMatchObject({ level: 'info', service: 'credential', msg: 'secret created', secretId: 's-1' });
    expect(lines[0]).not.toContain('MARKER');
  });
});

describe('tracing', () => {
  /** A send span, its W3C headers, and a receive span under them that logs a line. */
  async function hop(exporter: 'memory' | 'none') {
    await shutdownTracing();
    const tracer = initTracing('policy', exporter);
    const { lines, destination } = capture();
    const log = createLogger({ service: 'policy', destination });
    let headers: Record<string, string> = {};
    let sent = { traceId: '', recording: false };
    let receivedTraceId = '';
    tracer.startActiveSpan('send', (span) => {
      sent = { traceId: span.spanContext().traceId, recording: span.isRecording() };
      headers = injectTraceHeaders();
      span.end();
    });
    context.with(extractTraceContext(headers), () =>
      tracer.startActiveSpan('receive', (span) => {
        log.info('handled');
        receivedTraceId = span.spanContext().traceId;
        span.end();
      }),
    );
    await new Promise((r) => setImmediate(r));
    return { sent, headers, receivedTraceId, loggedTraceId: JSON.parse(lines[0]).traceId as string };
  }

  afterAll(() => shutdownTracing());

  it('carries W3C trace context across a hop and stamps log lines with it', async () => {
    const { sent, headers, receivedTraceId, loggedTraceId } = await hop('memory');
    expect(sent.recording).toBe(true);
    expect(headers.traceparent).toMatch(new RegExp(`^00-${sent.traceId}-[0-9a-f]{16}-01$`));
    expect([receivedTraceId, loggedTraceId]).toEqual([sent.traceId, sent.traceId]);
    expect(finishedSpans().map((s) => s.name)).toEqual(['send', 'receive']);
    expect(trace.getActiveSpan()).toBeUndefined();
  });

  it('with nothing exported, records no span but still carries trace context across a hop and into log lines', async () => {
    const { sent, headers, receivedTraceId, loggedTraceId } = await hop('none');
    expect(sent.recording).toBe(false);
    expect(sent.traceId).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
    expect(headers.traceparent).toMatch(new RegExp(`^00-${sent.traceId}-[0-9a-f]{16}-00$`));
    expect([receivedTraceId, loggedTraceId]).toEqual([sent.traceId, sent.traceId]);
  });
});

describe('metrics', () => {
  it('exposes Prometheus text with the service label', async () => {
    const registry = createMetrics('audit');
    counter(registry, 'palisade_test_total', 'a test counter').inc(3);
    const text = await registry.metrics();
    expect(text).toContain('palisade_test_total{service="audit"} 3');
    expect(text).toContain('process_cpu_user_seconds_total');
  });
});
