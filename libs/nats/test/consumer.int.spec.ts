import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Msg, NatsConnection } from 'nats';
import { EVENTS_STREAM, type EventEnvelope, type ForgeryReport } from '@palisade/contracts';
import type { ServiceIdentity } from '@palisade/pki';
import { DLQ_HEADERS, DurableEventConsumer, JetStreamEventPublisher, type NatsLogger } from '../src';
import { adminIdentity, connectAs, deleteDurable, eventually, runToken, serviceIdentity, sleep, testEvent } from './helpers';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('int-test');

let admin: NatsConnection;
let policy: NatsConnection;
let llmRouter: NatsConnection;
const forgeries: ForgeryReport[] = [];
const identities: ServiceIdentity[] = [];
const consumers: DurableEventConsumer[] = [];
const logged: { level: string; msg: string; obj: object }[] = [];
const logger: NatsLogger = {
  info: (obj, msg) => logged.push({ level: 'info', obj, msg }),
  warn: (obj, msg) => logged.push({ level: 'warn', obj, msg }),
  error: (obj, msg) => logged.push({ level: 'error', obj, msg }),
};

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const a = await adminIdentity();
  const p = await serviceIdentity('policy');
  const l = await serviceIdentity('llm-router');
  identities.push(a, p, l);
  admin = await connectAs(a, 'int-admin');
  policy = await connectAs(p, 'int-policy');
  llmRouter = await connectAs(l, 'int-llm-router');
  for (const durable of ['policy-inttest-retry', 'policy-inttest-poison', 'policy-inttest-trace', 'policy-inttest-forgery', 'policy-inttest-restart']) {
    await deleteDurable(admin, EVENTS_STREAM, durable);
  }
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.stop()));
  await Promise.all([admin?.close(), policy?.close(), llmRouter?.close()]);
  identities.forEach((i) => i.stop());
  context.disable();
  propagation.disable();
});

/** Dead letters on `subject`, collected by the admin. */
function collect(subject: string): Msg[] {
  const received: Msg[] = [];
  const sub = admin.subscribe(subject);
  void (async () => {
    for await (const m of sub) received.push(m);
  })();
  return received;
}

function consumer(name: string, filter: string, handler: (e: EventEnvelope, deliveryCount: number) => Promise<void>) {
  const c = new DurableEventConsumer({
    nc: policy,
    service: 'policy',
    consumer: name,
    filterSubjects: filter,
    handler: (e, d) => handler(e, d.deliveryCount),
    onForgery: async (report) => {
      forgeries.push(report);
    },
    maxDeliver: 3,
    backoffMs: [100, 300],
    logger,
    tracer,
  });
  consumers.push(c);
  return c;
}

describe('DurableEventConsumer', () => {
  it('retries a failing handler with backoff, then dead-letters the event with the reason', async () => {
    const token = runToken();
    const deadLetters = collect('palisade.dlq.policy.inttest-retry');
    await admin.flush();
    const attempts = new Map<string, number[]>();
    const failing = testEvent('policy', `policy.${token}.failed`);
    const flaky = testEvent('policy', `policy.${token}.flaked`);
    const c = consumer('inttest-retry', `palisade.events.policy.${token}.>`, async (e, deliveryCount) => {
      attempts.set(e.id, [...(attempts.get(e.id) ?? []), Date.now()]);
      if (e.id === failing.id) throw new Error('projection table is locked');
      if (e.id === flaky.id && deliveryCount === 1) throw new Error('transient');
    });
    expect(c.durable).toBe('policy-inttest-retry');
    await c.start();
    await new JetStreamEventPublisher(policy).publish([failing, flaky]);

    const dead = await eventually(() => deadLetters[0]);
    expect(attempts.get(failing.id)).toHaveLength(3);
    const [t1, t2, t3] = attempts.get(failing.id)!;
    expect(t2 - t1).toBeGreaterThanOrEqual(90);
    expect(t3 - t2).toBeGreaterThanOrEqual(280);
    expect(dead.headers?.get(DLQ_HEADERS.reason)).toBe('handler-failed');
    expect(dead.headers?.get(DLQ_HEADERS.problems)).toBe('Error: projection table is locked');
    expect(dead.headers?.get(DLQ_HEADERS.deliveries)).toBe('3');
    expect(dead.headers?.get(DLQ_HEADERS.consumer)).toBe('policy-inttest-retry');
    expect(dead.headers?.get(DLQ_HEADERS.subject)).toBe(`palisade.events.${failing.type}`);
    expect(JSON.parse(new TextDecoder().decode(dead.data)).id).toBe(failing.id);

    expect(attempts.get(flaky.id)).toHaveLength(2);
    await sleep(500);
    expect(deadLetters).toHaveLength(1); // the flaky one succeeded on its retry and was not redelivered
    expect(attempts.get(failing.id)).toHaveLength(3);
    expect(logged.some((l) => l.level === 'warn' && l.msg === 'event handler failed, will retry')).toBe(true);
  });

  it('dead-letters a poison message at once, without calling the handler', async () => {
    const token = runToken();
    const deadLetters = collect('palisade.dlq.policy.inttest-poison');
    await admin.flush();
    const handled: string[] = [];
    const c = consumer('inttest-poison', `palisade.events.policy.${token}.>`, async (e) => {
      handled.push(e.id);
    });
    await c.start();
    const js = policy.jetstream();
    await js.publish(`palisade.events.policy.${token}.garbled`, 'this is not json');
    const badId = { ...testEvent('policy', `policy.${token}.created`), id: 'not-a-uuid' };
    await js.publish(`palisade.events.policy.${token}.created`, JSON.stringify(badId));
    const good = testEvent('policy', `policy.${token}.created`);
    await new JetStreamEventPublisher(policy).publish([good]);

    await eventually(() => (deadLetters.length >= 2 && handled.length >= 1 ? true : undefined));
    const reasons = deadLetters.map((m) => [m.headers?.get(DLQ_HEADERS.reason), m.headers?.get(DLQ_HEADERS.problems), m.headers?.get(DLQ_HEADERS.deliveries)]);
    expect(reasons).toEqual([
      ['poison', '(event): not JSON', '1'],
      ['poison', 'id: must be a lowercase UUIDv7', '1'],
    ]);
    expect(handled).toEqual([good.id]);
    await sleep(300);
    expect(deadLetters).toHaveLength(2); // terminated, not redelivered
  });

  it('runs the handler in a span whose parent is the publisher’s span (trace context crosses the hop)', async () => {
    const token = runToken();
    const event = testEvent('policy', `policy.${token}.created`);
    let seenTraceId: string | undefined;
    const c = consumer('inttest-trace', `palisade.events.policy.${token}.>`, async () => {
      seenTraceId = trace.getActiveSpan()?.spanContext().traceId;
    });
    await c.start();

    const producer = tracer.startSpan('command policy.create');
    await context.with(trace.setSpan(context.active(), producer), () => new JetStreamEventPublisher(policy).publish([event]));
    producer.end();

    await eventually(() => seenTraceId);
    expect(seenTraceId).toBe(producer.spanContext().traceId);
    const processSpan = await eventually(() =>
      exporter.getFinishedSpans().find((s) => s.name === `process palisade.events.${event.type}`),
    );
    expect(processSpan.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(processSpan.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(processSpan.attributes['messaging.message.id']).toBe(event.id);
  });

  it('dead-letters an event whose source and type name another service than its subject, reports it, and never handles it', async () => {
    const token = runToken();
    const deadLetters = collect('palisade.dlq.policy.inttest-forgery');
    await admin.flush();
    const handled: string[] = [];
    const c = consumer('inttest-forgery', `palisade.events.llm-router.${token}.>`, async (e) => {
      handled.push(e.id);
    });
    await c.start();
    // issue 10, finding 2: llm-router writes auth's history on its own subject
    const forged = { ...testEvent('auth', 'auth.user.signed-in'), tenantId: 'demo', actor: { type: 'user', id: 'forged-ceo' } };
    const subject = `palisade.events.llm-router.${token}.completed`;
    await llmRouter.jetstream().publish(subject, JSON.stringify(forged));
    const own = testEvent('llm-router', `llm-router.${token}.completed`);
    await new JetStreamEventPublisher(llmRouter).publish([own]);

    await eventually(() => (deadLetters.length >= 1 && handled.length >= 1 && forgeries.some((f) => f.eventId === forged.id) ? true : undefined));
    expect(handled).toEqual([own.id]);
    const dead = deadLetters[0];
    expect(dead.headers?.get(DLQ_HEADERS.reason)).toBe('forged');
    expect(dead.headers?.get(DLQ_HEADERS.problems)).toBe('source: "auth" published by llm-router; type: "auth.user.signed-in" published by llm-router');
    expect(dead.headers?.get(DLQ_HEADERS.subject)).toBe(subject);
    expect(JSON.parse(new TextDecoder().decode(dead.data)).id).toBe(forged.id);
    const report = forgeries.find((f) => f.eventId === forged.id);
    expect(report).toMatchObject({
      subject,
      publisher: 'llm-router',
      claimedSource: 'auth',
      claimedType: 'auth.user.signed-in',
      tenantId: 'demo',
      consumer: 'policy-inttest-forgery',
      streamSequence: expect.any(Number),
    });
    expect(JSON.stringify(report)).not.toContain('forged-ceo');
    await sleep(300);
    expect(deadLetters).toHaveLength(1); // terminated, not redelivered
    expect(forgeries.filter((f) => f.eventId === forged.id)).toHaveLength(1);
  });

  it('restarts a pull that ended under it, and a stop during that restart stops it for good', async () => {
    const token = runToken();
    // The restart's JetStream management calls wait at a gate the test opens, so that the
    // stop lands inside the restart deterministically.
    const gate: { closed?: Promise<void> } = {};
    let inRestart: () => void = () => undefined;
    const restarting = new Promise<void>((resolve) => (inRestart = resolve));
    const gated = new Proxy(policy, {
      get(target, key) {
        if (key === 'jetstreamManager') {
          return async (...args: Parameters<NatsConnection['jetstreamManager']>) => {
            if (gate.closed) {
              inRestart();
              await gate.closed;
            }
            return target.jetstreamManager(...args);
          };
        }
        const value = Reflect.get(target, key) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const handled: string[] = [];
    const c = new DurableEventConsumer({
      nc: gated,
      service: 'policy',
      consumer: 'inttest-restart',
      filterSubjects: `palisade.events.policy.${token}.>`,
      handler: async (e) => {
        handled.push(e.id);
      },
      onForgery: async (report) => {
        forgeries.push(report);
      },
      logger,
      tracer,
    });
    consumers.push(c);
    await c.start();
    const before = testEvent('policy', `policy.${token}.before`);
    await new JetStreamEventPublisher(policy).publish([before]);
    await eventually(() => (handled.includes(before.id) ? true : undefined));

    await deleteDurable(admin, EVENTS_STREAM, 'policy-inttest-restart'); // the pull ends: it is opened again
    await eventually(async () => {
      await new JetStreamEventPublisher(policy).publish([testEvent('policy', `policy.${token}.restarted`)]);
      return handled.length > 1 ? true : undefined;
    }, 15_000);

    let open: () => void = () => undefined;
    gate.closed = new Promise<void>((resolve) => (open = resolve));
    await deleteDurable(admin, EVENTS_STREAM, 'policy-inttest-restart'); // the pull ends under the consumer
    await restarting;
    const stopping = c.stop();
    open();
    await stopping;
    // the made-again durable may still have been handling earlier events until the stop returned
    const handledAtStop = handled.length;

    const after = testEvent('policy', `policy.${token}.after`);
    await new JetStreamEventPublisher(policy).publish([after]);
    await sleep(1500);
    expect(handled).toHaveLength(handledAtStop); // nothing handled after the stop
    expect(handled).not.toContain(after.id);
    const jsm = await admin.jetstreamManager({ checkAPI: false });
    const pulling = await jsm.consumers.info(EVENTS_STREAM, 'policy-inttest-restart').then((i) => i.num_waiting, () => 0);
    expect(pulling).toBe(0); // and nothing left pulling
    expect(logged.some((l) => l.msg === 'event consumer stopped unexpectedly, restarting')).toBe(true);
  });
});
