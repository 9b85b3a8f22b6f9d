import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { NatsConnection } from 'nats';
import { PalisadeError, rpcSubject } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { rpcRequest, serveRpc, type NatsLogger, type RpcServer } from '../src';
import { connectAs, serviceIdentity } from './helpers';

// rpcRequest, the asking side, against a service answering with serveRpc (the answering
// side's own behaviour is rpc-server.int.spec.ts).
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('int-test');

function lease(payload: unknown) {
  const body = payload as { secretId?: string } | null;
  if (body?.secretId === 's-missing') throw new PalisadeError('not_found', 'secret s-missing not found', { secretId: 's-missing' });
  if (body?.secretId === 's-crash') throw new Error('connection to postgres://vault:hunter2@db failed');
  return { leaseId: `lease-of-${body?.secretId}`, activeTraceId: trace.getActiveSpan()?.spanContext().traceId ?? null };
}

const logged: { obj: object; msg: string }[] = [];
const logger: NatsLogger = { info: () => undefined, warn: () => undefined, error: (obj, msg) => logged.push({ obj, msg }) };

let credentialNc: NatsConnection;
let server: RpcServer;
let caller: NatsConnection;
const identities: ServiceIdentity[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const credential = await serviceIdentity('credential');
  const policy = await serviceIdentity('policy');
  identities.push(credential, policy);
  credentialNc = await connectAs(credential, 'int-credential');
  server = serveRpc(credentialNc, { service: 'credential', tracer, logger, handlers: { [rpcSubject('credential', 'lease')]: lease } });
  await credentialNc.flush();
  caller = await connectAs(policy, 'int-policy');
});

afterAll(async () => {
  await caller?.close();
  await server?.stop();
  await credentialNc?.close();
  identities.forEach((i) => i.stop());
  context.disable();
  propagation.disable();
});

describe('request-reply between services', () => {
  it('answers a request from another service, and carries its trace context', async () => {
    const span = tracer.startSpan('policy authorize');
    const result = await context.with(trace.setSpan(context.active(), span), () =>
      rpcRequest<{ leaseId: string; activeTraceId: string }>(caller, rpcSubject('credential', 'lease'), { secretId: 's-1' }, { tracer }),
    );
    span.end();
    expect(result.leaseId).toBe('lease-of-s-1');
    expect(result.activeTraceId).toBe(span.spanContext().traceId);
    const served = exporter.getFinishedSpans().find((s) => s.name === 'process palisade.rpc.credential.lease');
    const client = exporter.getFinishedSpans().find((s) => s.name === 'send palisade.rpc.credential.lease');
    expect(client?.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
    expect(served?.parentSpanContext?.spanId).toBe(client?.spanContext().spanId);
  });

  it('keeps namespaced deployments apart: a request is answered only by a server of its PALISADE_RPC_NAMESPACE', async () => {
    const answer = (who: string) => () => ({ who });
    const inNamespace = async <T>(namespace: string | undefined, work: () => Promise<T>): Promise<T> => {
      const before = process.env.PALISADE_RPC_NAMESPACE;
      if (namespace === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
      else process.env.PALISADE_RPC_NAMESPACE = namespace;
      try {
        return await work();
      } finally {
        if (before === undefined) delete process.env.PALISADE_RPC_NAMESPACE;
        else process.env.PALISADE_RPC_NAMESPACE = before;
      }
    };
    const subject = rpcSubject('credential', 'silent');
    const a = await inNamespace('suitea', async () => serveRpc(credentialNc, { service: 'credential', handlers: { [subject]: answer('a') } }));
    const b = await inNamespace('suiteb', async () => serveRpc(credentialNc, { service: 'credential', handlers: { [subject]: answer('b') } }));
    await credentialNc.flush();
    try {
      for (let i = 0; i < 10; i++) {
        expect(await inNamespace('suitea', () => rpcRequest(caller, subject, {}))).toEqual({ who: 'a' });
        expect(await inNamespace('suiteb', () => rpcRequest(caller, subject, {}))).toEqual({ who: 'b' });
      }
      // nobody answers the subject outside a namespace, nor a namespace nobody serves
      await expect(inNamespace(undefined, () => rpcRequest(caller, subject, {}, { timeoutMs: 300 }))).rejects.toMatchObject({ code: 'unavailable' });
      await expect(inNamespace('suitec', () => rpcRequest(caller, subject, {}, { timeoutMs: 300 }))).rejects.toMatchObject({ code: 'unavailable' });
      await expect(inNamespace('Not-Valid', () => rpcRequest(caller, subject, {}))).rejects.toThrow('PALISADE_RPC_NAMESPACE');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('turns a coded domain error into a coded reply, thrown again as PalisadeError at the caller', async () => {
    const error = await rpcRequest(caller, rpcSubject('credential', 'lease'), { secretId: 's-missing' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PalisadeError);
    expect(error).toMatchObject({ code: 'not_found', message: 'secret s-missing not found', details: { secretId: 's-missing' } });
  });

  it('answers any other error as internal, without its message, and logs it', async () => {
    const error = await rpcRequest(caller, rpcSubject('credential', 'lease'), { secretId: 's-crash' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'internal', message: 'internal error' });
    expect(JSON.stringify(error)).not.toContain('hunter2');
    expect(logged.some((l) => l.msg === 'RPC handler failed' && String((l.obj as { err: Error }).err.message).includes('hunter2'))).toBe(true);
  });

  it('reports a service that does not answer as unavailable', async () => {
    await expect(rpcRequest(caller, rpcSubject('billing', 'check'), {}, { timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'unavailable',
      message: 'no service answers palisade.rpc.billing.check',
    });
  });

  it('keeps many requests in flight on one connection, each settled with its own reply', async () => {
    const ids = Array.from({ length: 500 }, (_, i) => `s-${i}`);
    const results = await Promise.all(ids.map((secretId) => rpcRequest<{ leaseId: string }>(caller, rpcSubject('credential', 'lease'), { secretId })));
    expect(results.map((r) => r.leaseId)).toEqual(ids.map((id) => `lease-of-${id}`));
  });

  it('reports a service that takes the request but never answers as unavailable after the timeout, and ignores a late reply', async () => {
    const silent = await connectAs(identities[0], 'int-credential-silent');
    const late: Array<() => void> = [];
    silent.subscribe(rpcSubject('credential', 'silent'), { callback: (_e, msg) => late.push(() => msg.respond(new TextEncoder().encode('{"result":"late"}'))) });
    await silent.flush();
    try {
      await expect(rpcRequest(caller, rpcSubject('credential', 'silent'), {}, { timeoutMs: 300 })).rejects.toMatchObject({
        code: 'unavailable',
        message: 'palisade.rpc.credential.silent did not answer within 300 ms',
      });
      late.forEach((answer) => answer());
      await silent.flush();
      // The late reply settles nothing; the connection goes on serving.
      expect((await rpcRequest<{ leaseId: string }>(caller, rpcSubject('credential', 'lease'), { secretId: 's-2' })).leaseId).toBe('lease-of-s-2');
    } finally {
      await silent.close();
    }
  });

  it('reports a request to a subject the caller may not publish to as forbidden, at once', async () => {
    await expect(rpcRequest(caller, 'palisade.events.credential.secret.created', {}, { timeoutMs: 3000 })).rejects.toMatchObject({
      code: 'forbidden',
      message: 'not permitted to request palisade.events.credential.secret.created',
    });
  });

  it('reports a request on a closed connection as unavailable', async () => {
    const closed = await connectAs(identities[1], 'int-policy-closed');
    await closed.close();
    await expect(rpcRequest(closed, rpcSubject('credential', 'lease'), { secretId: 's-3' })).rejects.toMatchObject({ code: 'unavailable' });
  });
});
