import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Msg, MsgHdrs, NatsConnection, PublishOptions } from 'nats';
import { buildEvent, PalisadeError, systemEventContext } from '@palisade/contracts';
import { inboxPrefixFor, JetStreamEventPublisher, streamConfigs, toWireError } from './index';

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
  it('codes PalisadeErrors as themselves, with details; anything else as internal without its message (logged)', () => {
    const errors: object[] = [];
    const logger = { info: () => undefined, warn: () => undefined, error: (obj: object) => errors.push(obj) };
    expect(toWireError(new PalisadeError('conflict', 'version 3 expected', { v: 3 }), logger)).toEqual({
      code: 'conflict',
      message: 'version 3 expected',
      details: { v: 3 },
    });
    expect(errors).toHaveLength(0);
    expect(toWireError(new TypeError('cannot read x of undefined'), logger, 'palisade.rpc.billing.quote')).toEqual({ code: 'internal', message: 'internal error' });
    expect(errors).toEqual([expect.objectContaining({ subject: 'palisade.rpc.billing.quote' })]);
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
