import { headers as natsHeaders, type NatsConnection } from 'nats';
import { buildEvent, systemEventContext, type EventEnvelope } from '@palisade/contracts';
import { connectNats, JetStreamEventPublisher } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { existsSync } from 'node:fs';
import type { DataSource } from 'typeorm';
import { createDataSource, OutboxRelay, PgEventStore } from '@palisade/postgres';
import { createTestSchema, infra, type TestSchema } from '@palisade/testing';
import { cpuMsOf, round, summarize } from './stats';

/**
 * outbox: event store append + relay to JetStream, from commit to JetStream ack, next
 * to a raw JetStream publish of the same kind of events in the same run. The events go
 * to a stream of the benchmark's own (not PALISADE_EVENTS), which it deletes after.
 * `run_node_cpu_us_per_event` and `run_pg_cpu_us_per_event` are the CPU per event of the
 * writers-and-relay run (this process; its PostgreSQL backends, read from /proc): on a
 * machine shared with other work the throughputs move with the load, these much less.
 */
const STREAM = 'PALISADE_BENCH_OUTBOX';
const SUBJECT_PREFIX = 'palisade.bench.outbox';
const EVENTS = Number(process.env.BENCH_OUTBOX_EVENTS ?? 60000);
const WARMUP = 5000;
const WRITERS = 4;
const EVENTS_PER_TX = 25;
const RAW_WINDOW = 1000;
/** The writers' connections and the relay's (`-relay`), to find their PostgreSQL backends. */
const APPLICATION = 'palisade-bench-outbox';

const ctx = systemEventContext('billing');
const makeEvent = (n: number): EventEnvelope =>
  buildEvent(ctx, {
    type: 'billing.usage.recorded',
    tenantId: `tenant-${n % 50}`,
    actor: { type: 'agent', id: `agent-${n % 200}` },
    data: { meter: 'llm_tokens', quantity: 1200 + (n % 100), model: 'private-llm', sessionId: `s-${n % 1000}` },
  });

async function rawPublish(nc: NatsConnection, count: number): Promise<number> {
  const js = nc.jetstream();
  const encoder = new TextEncoder();
  const events = Array.from({ length: count }, (_, i) => makeEvent(i));
  const start = performance.now();
  for (let i = 0; i < events.length; i += RAW_WINDOW) {
    await Promise.all(
      events.slice(i, i + RAW_WINDOW).map((e) => {
        const h = natsHeaders();
        return js.publish(`${SUBJECT_PREFIX}.${e.type}`, encoder.encode(JSON.stringify(e)), { msgID: e.id, headers: h });
      }),
    );
  }
  return count / ((performance.now() - start) / 1000);
}

/** A relay of the test schema's events to the benchmark's stream. */
function relayOf(nc: NatsConnection, db: TestSchema, onPublished: (events: readonly EventEnvelope[]) => void): OutboxRelay {
  return new OutboxRelay({
    connection: { ...db.app, applicationName: APPLICATION },
    publisher: new JetStreamEventPublisher(nc, { subjectOf: (e) => `${SUBJECT_PREFIX}.${e.type}`, streamName: STREAM }),
    logger: { info: () => undefined, warn: (o, m) => console.warn(m, o), error: (o, m) => console.error(m, o) },
    onPublished,
  });
}

/**
 * The relay's own pace: `count` events committed first, then the relay started on them
 * (its CPU and the time until JetStream acknowledged the last), so the writers do not bound it.
 */
async function drainRun(nc: NatsConnection, count: number) {
  const db = await createTestSchema('bench');
  const store = new PgEventStore(db.dataSource, db.schema);
  for (let n = 0; n < count; n += 500) {
    const events = Array.from({ length: Math.min(500, count - n) }, (_, i) => makeEvent(n + i));
    await store.inTransaction((t) => store.appendToStream(t, `backlog-${n}`, events, 0));
  }
  let acked = 0;
  let allAcked: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allAcked = resolve));
  const relay = relayOf(nc, db, (events) => {
    acked += events.length;
    if (acked >= count) allAcked();
  });
  const cpu = process.cpuUsage();
  const start = performance.now();
  relay.start();
  await done;
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  await relay.stop();
  await db.drop();
  return { perSecond: count / (ms / 1000), cpuUsPerEvent: (used.user + used.system) / count };
}

/** CPU (ms) used so far by each PostgreSQL backend of the benchmark's connections (Linux /proc: PostgreSQL on this host). */
async function backendCpuMs(ds: DataSource): Promise<Map<number, number>> {
  const rows: Array<{ pid: number }> = await ds.query(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE $1 AND datname = current_database()`, [`${APPLICATION}%`]);
  return new Map(rows.filter((r) => existsSync(`/proc/${r.pid}`)).map((r) => [r.pid, cpuMsOf(r.pid)]));
}

async function relayRun(nc: NatsConnection, count: number) {
  const db = await createTestSchema('bench');
  // the writers' pool under its own name (the test schema's pool is named as every test's)
  const writers = createDataSource({ ...db.app, applicationName: APPLICATION });
  await writers.initialize();
  const store = new PgEventStore(writers, db.schema);
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  let acked = 0;
  let lastAck = 0;
  let allAcked: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allAcked = resolve));
  const relay = relayOf(nc, db, (events) => {
    const now = performance.now();
    for (const e of events) {
      const at = committedAt.get(e.id);
      if (at !== undefined) latencies.push(now - at);
    }
    acked += events.length;
    lastAck = now;
    if (acked >= count) allAcked();
  });
  relay.start();
  // every writer's connection open before the clock starts, as the relay's is
  await Promise.all(Array.from({ length: WRITERS }, () => store.inTransaction((t) => store.readStream(t, 'none'))));
  while (relay.status().state !== 'active') await new Promise((resolve) => setTimeout(resolve, 5));
  const backends = await backendCpuMs(writers);
  const cpu = process.cpuUsage();
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let tx = 0; next < count; tx++) {
        const n = next;
        next += EVENTS_PER_TX;
        const events = Array.from({ length: Math.min(EVENTS_PER_TX, count - n) }, (_, i) => makeEvent(n + i));
        await store.inTransaction((t) => store.appendToStream(t, `usage-${w}-${tx}`, events, 0));
        const at = performance.now();
        for (const e of events) committedAt.set(e.id, at);
      }
    }),
  );
  const written = performance.now();
  await done;
  const used = process.cpuUsage(cpu);
  const pgMs = [...(await backendCpuMs(writers))].reduce((sum, [pid, ms]) => sum + ms - (backends.get(pid) ?? ms), 0);
  await relay.stop();
  await writers.destroy();
  await db.drop();
  return {
    perSecond: count / ((lastAck - start) / 1000),
    writtenPerSecond: count / ((written - start) / 1000),
    nodeCpuUsPerEvent: (used.user + used.system) / count,
    pgCpuUsPerEvent: (pgMs * 1000) / count,
    ...summarize(latencies),
  };
}

export async function outboxBenchmark(): Promise<Record<string, number>> {
  const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
  const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: 'bench-outbox' });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(STREAM).catch(() => undefined);
  await jsm.streams.add({ name: STREAM, subjects: [`${SUBJECT_PREFIX}.>`], duplicate_window: 3600 * 1e9 });
  try {
    await relayRun(nc, WARMUP);
    await rawPublish(nc, WARMUP);
    const relay = await relayRun(nc, EVENTS);
    const raw = await rawPublish(nc, EVENTS);
    const drain = await drainRun(nc, EVENTS);
    return {
      // the relay alone on a backlog, and the benchmark process's CPU per event relayed
      relay_drain_events_per_s: round(drain.perSecond, 0),
      relay_drain_cpu_us_per_event: round(drain.cpuUsPerEvent, 1),
      relay_events_per_s: round(relay.perSecond, 0),
      // the writers' own pace: the relay cannot be faster than the commits it follows
      appended_events_per_s: round(relay.writtenPerSecond, 0),
      // CPU per event of the run above: the benchmark process (writers, relay, its publisher) and its PostgreSQL backends (writers, relay)
      run_node_cpu_us_per_event: round(relay.nodeCpuUsPerEvent, 1),
      run_pg_cpu_us_per_event: round(relay.pgCpuUsPerEvent, 1),
      relay_p50_ms: round(relay.p50),
      relay_p99_ms: round(relay.p99),
      raw_publish_events_per_s: round(raw, 0),
      ratio: round(relay.perSecond / raw, 3),
    };
  } finally {
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await nc.drain();
    identity.stop();
  }
}

