import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { HttpException } from '@nestjs/common';
import type { ArgumentsHost } from '@nestjs/common';
import type { Msg, MsgHdrs, NatsConnection, PublishOptions } from 'nats';
import { firstValueFrom } from 'rxjs';
import { buildEvent, PalisadeError, systemEventContext } from '@palisade/contracts';
import { inboxPrefixFor, JetStreamEventPublisher, RpcErrorFilter, RpcReplySerializer, RpcRequestDeserializer, streamConfigs } from './index';

const event = (n: number) =>
  buildEvent(systemEventContext('billing'), { type: 'billing.budget.exceeded', tenantId: 'acme', actor: { type: 'system', id: 'meter' }, data: { n } });

/** A NATS connection that records publishes; the test sends JetStream's acknowledgements. */
function fakeNats() {
  const calls: { subject: string; data: Uint8Array; opts: PublishOptions }[] = [];
  let deliver: ((err: Error | null, msg: Msg) => void) | undefined;
  const nc = {
    options: { inboxPrefix: '_INBOX.billing' },
    publish: (subject: string, data: Uint8Array, opts: PublishOptions) => calls.push({ subject, data, opts }),
    subscribe: (subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) => {
      expect(subject).toMatch(/^_INBOX\.billing\.[A-Za-z0-9]+\.\*$/);
      deliver = opts.callback;
      return { isClosed: () => false, unsubscribe: () => undefined };
    },
  } as unknown as NatsConnection;
  const reply = (i: number, body: object) =>
    deliver!(null, { subject: calls[i].opts.reply!, data: new TextEncoder().encode(JSON.stringify(body)), headers: undefined } as unknown as Msg);
  const ack = (i: number) => reply(i, { stream: 'PALISADE_EVENTS', seq: i + 1 });
  return { nc, calls, ack, reply };
}

describe('JetStreamEventPublisher', () => {
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    context.disable();
    propagation.disable();
  });

  it('sends the whole batch before waiting for any acknowledgement, deduplicated by event id', async () => {
    const { nc, calls, ack } = fakeNats();
    const events = [event(1), event(2), event(3)];
    let done = false;
    const published = new JetStreamEventPublisher(nc).publish(events).then(() => (done = true));
    expect(calls.map((c) => c.subject)).toEqual(Array(3).fill('palisade.events.billing.budget.exceeded'));
    expect(calls.map((c) => (c.opts.headers as MsgHdrs).get('Nats-Msg-Id'))).toEqual(events.map((e) => e.id));
    expect(calls.every((c) => (c.opts.headers as MsgHdrs).get('Nats-Expected-Stream') === 'PALISADE_EVENTS')).toBe(true);
    expect(new Set(calls.map((c) => c.opts.reply)).size).toBe(3);
    expect(JSON.parse(new TextDecoder().decode(calls[1].data))).toEqual(events[1]);

    ack(0);
    ack(2);
    await new Promise((r) => setTimeout(r, 10));
    expect(done).toBe(false); // the second acknowledgement is still missing
    ack(1);
    await published;
    expect(done).toBe(true);
  });

  it('carries the active trace context in W3C headers', async () => {
    const { nc, calls, ack } = fakeNats();
    const spanContext = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED };
    const published = context.with(trace.setSpanContext(context.active(), spanContext), () =>
      new JetStreamEventPublisher(nc).publish([event(1)]),
    );
    ack(0);
    await published;
    expect((calls[0].opts.headers as MsgHdrs).get('traceparent')).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });

  it('refuses a batch with an invalid event before sending anything, naming the problem', async () => {
    const { nc, calls } = fakeNats();
    const bad = { ...event(2), occurredAt: 'yesterday' };
    const error = await new JetStreamEventPublisher(nc).publish([event(1), bad]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PalisadeError);
    expect(error).toMatchObject({ code: 'validation' });
    expect((error as Error).message).toContain('#1');
    expect((error as Error).message).toContain('occurredAt');
    expect(calls).toHaveLength(0);
  });

  it('fails as unavailable when JetStream refuses an event or does not acknowledge it in time', async () => {
    const { nc, ack, reply } = fakeNats();
    const events = [event(1), event(2), event(3)];
    const published = new JetStreamEventPublisher(nc, { ackTimeoutMs: 200 }).publish(events).catch((e: unknown) => e);
    ack(0);
    reply(1, { error: { code: 400, description: 'expected stream does not match' } });
    const error = await published;
    expect(error).toMatchObject({
      code: 'unavailable',
      details: {
        failed: [
          { id: events[1].id, reason: '400 expected stream does not match' },
          { id: events[2].id, reason: 'no acknowledgement within 200 ms' },
        ],
      },
    });
  });
});

describe('RPC wire format', () => {
  const host = { getType: () => 'rpc', switchToRpc: () => ({ getContext: () => undefined }) } as unknown as ArgumentsHost;

  it('reads a plain JSON request and knows a request by its reply subject', () => {
    const d = new RpcRequestDeserializer();
    const body = new TextEncoder().encode('{"secretId":"s-1"}');
    expect(d.deserialize(body, { channel: 'palisade.rpc.credential.lease', replyTo: '_INBOX.policy.x' })).toEqual({
      pattern: 'palisade.rpc.credential.lease',
      data: { secretId: 's-1' },
      id: '_INBOX.policy.x',
    });
    expect(d.deserialize(new TextEncoder().encode('{oops'), { channel: 'a', replyTo: 'r' }).data).toBeUndefined();
    expect(d.deserialize(body, { channel: 'a' })).not.toHaveProperty('id');
  });

  it('writes results and coded errors, and never an uncoded error', () => {
    const s = new RpcReplySerializer();
    const json = (p: object) => JSON.parse(new TextDecoder().decode(s.serialize(p).data));
    expect(json({ response: { ok: 1 }, isDisposed: true })).toEqual({ result: { ok: 1 } });
    expect(json({ err: { code: 'forbidden', message: 'no' } })).toEqual({ error: { code: 'forbidden', message: 'no' } });
    expect(json({ err: new Error('secret detail') })).toEqual({ error: { code: 'internal', message: 'internal error' } });
    expect(json({ err: 'There is no matching message handler defined in the remote service.' })).toEqual({
      error: { code: 'not_found', message: 'no handler for this request' },
    });
  });

  it('filters PalisadeErrors to their code, client HttpExceptions to theirs, the rest to internal (logged)', async () => {
    const errors: object[] = [];
    const filter = new RpcErrorFilter({ info: () => undefined, warn: () => undefined, error: (obj) => errors.push(obj) });
    const caught = (e: unknown) => firstValueFrom(filter.catch(e, host)).catch((x: unknown) => x);
    expect(await caught(new PalisadeError('conflict', 'version 3 expected', { v: 3 }))).toEqual({
      code: 'conflict',
      message: 'version 3 expected',
      details: { v: 3 },
    });
    expect(await caught(new HttpException({ message: ['name must be a string'] }, 400))).toMatchObject({
      code: 'validation',
      details: ['name must be a string'],
    });
    expect(errors).toHaveLength(0);
    expect(await caught(new TypeError('cannot read x of undefined'))).toEqual({ code: 'internal', message: 'internal error' });
    expect(errors).toHaveLength(1);
  });
});

describe('NATS conventions', () => {
  it('gives each service its own inbox prefix', () => {
    expect(inboxPrefixFor('spiffe://palisade.local/service/llm-router')).toBe('_INBOX.llm-router');
    expect(inboxPrefixFor('spiffe://palisade.local/admin/platform')).toBe('_INBOX');
    expect(inboxPrefixFor(undefined)).toBe('_INBOX');
  });

  it('keeps events 30 days with a one-hour duplicate window', () => {
    const [events, dlq] = streamConfigs();
    expect(events).toMatchObject({ name: 'PALISADE_EVENTS', subjects: ['palisade.events.>'], storage: 'file', num_replicas: 1 });
    expect(events.duplicate_window).toBe(3600 * 1e9);
    expect(events.max_age).toBe(30 * 24 * 3600 * 1e9);
    expect(dlq).toMatchObject({ name: 'PALISADE_DLQ', subjects: ['palisade.dlq.>'] });
    expect(streamConfigs({ replicas: 3 })[0].num_replicas).toBe(3);
  });
});
