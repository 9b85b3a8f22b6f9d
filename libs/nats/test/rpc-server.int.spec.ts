import { context, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { NatsConnection } from 'nats';
import { PalisadeError, rpcSubject, validationError } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { rpcRequest, serveRpc, type NatsLogger, type RpcServer } from '../src';
import { connectAs, serviceIdentity, sleep } from './helpers';

// serveRpc: plain queue subscriptions answering palisade.rpc.<svc>.<method> on a
// service's own mTLS connection, with the wire format and spans of the Nest transport.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('int-test');

const QUOTE = rpcSubject('billing', 'quote');
const QUOTES = rpcSubject('billing', 'quote-batch');
const UNSERIALIZABLE = rpcSubject('billing', 'unserializable');

const logged: { obj: object; msg: string }[] = [];
const logger: NatsLogger = { info: () => undefined, warn: () => undefined, error: (obj, msg) => logged.push({ obj, msg }) };

function quote(payload: unknown, _subject?: string, askedBy?: string) {
  const body = payload as { units?: unknown } | null | undefined;
  if (typeof body !== 'object' || body === null) throw validationError('request: must be a JSON object');
  if (typeof body.units !== 'number') throw validationError('units: must be a number');
  if (body.units < 0) throw new PalisadeError('conflict', 'units below zero', { units: body.units });
  if (body.units === 13) throw new Error('connection to postgres://billing:hunter2@db failed');
  return { price: body.units * 2, activeTraceId: trace.getActiveSpan()?.spanContext().traceId ?? null, askedBy: askedBy ?? null };
}

let billing: NatsConnection;
let caller: NatsConnection;
let server: RpcServer;
const identities: ServiceIdentity[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const b = await serviceIdentity('billing');
  const p = await serviceIdentity('policy');
  identities.push(b, p);
  billing = await connectAs(b, 'int-billing');
  caller = await connectAs(p, 'int-policy');
  server = serveRpc(billing, {
    service: 'billing',
    tracer,
    logger,
    handlers: {
      [QUOTE]: quote,
      // asynchronous handlers and results are answered the same way
      [QUOTES]: async (payload) => {
        const items = (payload as { items?: unknown[] } | null)?.items;
        if (!Array.isArray(items)) throw validationError('items: must be an array');
        await sleep(1);
        return { quotes: items.map((i) => quote(i).price) };
      },
      [UNSERIALIZABLE]: async () => ({ amount: BigInt(1) }),
    },
  });
  await billing.flush();
});

afterAll(async () => {
  await server?.stop();
  await caller?.close();
  await billing?.close();
  identities.forEach((i) => i.stop());
  context.disable();
  propagation.disable();
});

describe('serveRpc', () => {
  it('answers a request, with the handler running in a SERVER span that is a child of the caller\'s span', async () => {
    exporter.reset();
    const parent = tracer.startSpan('caller work');
    const result = await context.with(trace.setSpan(context.active(), parent), () => rpcRequest<{ price: number; activeTraceId: string }>(caller, QUOTE, { units: 21 }, { tracer }));
    parent.end();
    expect(result.price).toBe(42);
    expect(result.activeTraceId).toBe(parent.spanContext().traceId);
    const client = exporter.getFinishedSpans().find((s) => s.name === `send ${QUOTE}`);
    const served = exporter.getFinishedSpans().find((s) => s.name === `process ${QUOTE}`);
    expect(client?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(served?.parentSpanContext?.spanId).toBe(client?.spanContext().spanId);
    expect(served?.attributes['messaging.destination.name']).toBe(QUOTE);
  });

  it('tells the handler which service asked: the one whose inbox gets the answer', async () => {
    await expect(rpcRequest(caller, QUOTE, { units: 1 })).resolves.toMatchObject({ askedBy: 'policy' });
    const raw = await caller.request(QUOTE, JSON.stringify({ units: 1 }), { timeout: 2000 });
    expect(JSON.parse(new TextDecoder().decode(raw.data)).result.askedBy).toBe('policy');
  });

  it('starts a new trace when the request carries no trace context', async () => {
    exporter.reset();
    const result = await rpcRequest<{ activeTraceId: string | null }>(caller, QUOTE, { units: 1 });
    const served = exporter.getFinishedSpans().find((s) => s.name === `process ${QUOTE}`);
    expect(served?.parentSpanContext).toBeUndefined();
    expect(result.activeTraceId).toBe(served?.spanContext().traceId);
  });

  it('answers validation errors with the code and the message naming the field, and a non-JSON body as an invalid request', async () => {
    await expect(rpcRequest(caller, QUOTE, { units: 'many' })).rejects.toMatchObject({ code: 'validation', message: 'units: must be a number' });
    const raw = await caller.request(QUOTE, new TextEncoder().encode('{not json'), { timeout: 2000 });
    expect(JSON.parse(new TextDecoder().decode(raw.data))).toEqual({ error: { code: 'validation', message: 'request: must be a JSON object' } });
  });

  it('turns a coded domain error into the coded reply, with its details, and marks the span as failed', async () => {
    exporter.reset();
    const error = await rpcRequest(caller, QUOTE, { units: -1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PalisadeError);
    expect(error).toMatchObject({ code: 'conflict', message: 'units below zero', details: { units: -1 } });
    const served = exporter.getFinishedSpans().find((s) => s.name === `process ${QUOTE}`);
    expect(served?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('answers any other error as internal, without its message, and logs it', async () => {
    const error = await rpcRequest(caller, QUOTE, { units: 13 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'internal', message: 'internal error' });
    expect(JSON.stringify(error)).not.toContain('hunter2');
    expect(logged.some((l) => l.msg === 'RPC handler failed' && (l.obj as { subject?: string }).subject === QUOTE)).toBe(true);
  });

  it('answers a result that is not JSON as internal, and keeps serving', async () => {
    await expect(rpcRequest(caller, UNSERIALIZABLE, {})).rejects.toMatchObject({ code: 'internal', message: 'internal error' });
    expect(logged.some((l) => l.msg === 'RPC handler failed' && (l.obj as { subject?: string }).subject === UNSERIALIZABLE)).toBe(true);
    await expect(rpcRequest(caller, QUOTE, { units: 2 })).resolves.toMatchObject({ price: 4 });
  });

  it('answers asynchronous handlers, including their errors, and many requests in flight in order of their callers', async () => {
    await expect(rpcRequest(caller, QUOTES, { items: [{ units: 1 }, { units: 2 }] })).resolves.toEqual({ quotes: [2, 4] });
    await expect(rpcRequest(caller, QUOTES, { items: [{ units: 'x' }] })).rejects.toMatchObject({ code: 'validation', message: 'units: must be a number' });
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => rpcRequest<{ price: number }>(caller, QUOTE, { units: 100 + i })));
    expect(answers.map((a) => a.price)).toEqual(Array.from({ length: 200 }, (_, i) => (100 + i) * 2));
  });

  it('stops taking requests on stop(), after answering the ones in progress', async () => {
    const b = await serviceIdentity('billing');
    identities.push(b);
    const nc = await connectAs(b, 'int-billing-2');
    const other = serveRpc(nc, { service: 'billing', handlers: { [rpcSubject('billing', 'stopping')]: () => sleep(200).then(() => 'answered') } });
    await nc.flush();
    const inProgress = rpcRequest(caller, rpcSubject('billing', 'stopping'), {});
    await sleep(50);
    await other.stop();
    await expect(inProgress).resolves.toBe('answered');
    await expect(rpcRequest(caller, rpcSubject('billing', 'stopping'), {}, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'unavailable' });
    await nc.close();
  });

  it('does not wait past its grace period for a handler that never answers', async () => {
    const b = await serviceIdentity('billing');
    identities.push(b);
    const nc = await connectAs(b, 'int-billing-3');
    const hanging = serveRpc(nc, { service: 'billing', handlers: { [rpcSubject('billing', 'hanging')]: () => new Promise(() => undefined) } });
    await nc.flush();
    const unanswered = rpcRequest(caller, rpcSubject('billing', 'hanging'), {}, { timeoutMs: 1500 }).catch((e: unknown) => e);
    await sleep(100);
    const started = Date.now();
    await hanging.stop(300);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(unanswered).resolves.toMatchObject({ code: 'unavailable' });
    await nc.close();
  });
});
