import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { keysOf, ChainVerifier, ParallelChainVerifier, warmUpVerifier, type Jwks } from '@palisade/audit-log';
import { buildEvent, EVENTS_STREAM, newEventId, type EventEnvelope, type EventFactoryContext } from '@palisade/contracts';
import { kafkaClient, type Admin, type Kafka } from '@palisade/kafka';
import { endOffsets, readRange } from '@palisade/audit-service/dist/ingest/audit-topic';
import { AckPolicy, DeliverPolicy } from 'nats';
import { connectNats, JetStreamEventPublisher } from '@palisade/nats';
import { ServiceIdentity } from '@palisade/pki';
import { createTestSchema, infra } from '@palisade/testing';
import { cpuMsOf, jvmCpuMsOf, percentile, round, serversCpuMs, summarize } from './stats';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const runner = require(join(__dirname, '..', '..', 'scripts', 'platform-runner.js'));

/**
 * audit: the audit service built and started as a process (its own PostgreSQL schema,
 * durable `audit-bench` of PALISADE_EVENTS, audit and checkpoint topics of its own),
 * fed through JetStream:
 * - ingest: events/s from the first publish to the last record visible (read_committed)
 *   in the audit topic, and p99 of publish → visible per event (records of this run's
 *   tenants: other services' events reach the durable too);
 * - raw: a plain kafkajs producer (acks=all, batches of the same size) writing the same
 *   record values to a topic of its own on the same broker, in the same run;
 * - verify: the records read back (raw bytes, as Kafka gave them), verified (JCS form,
 *   SHA-256, links, checkpoint signatures, ids) by the ParallelChainVerifier on 2 threads:
 *   this one verifies its share of the partitions as it is given them, one worker (started
 *   and warm before the first hand-over) gets the other share in transferred batches; beside
 *   it the single-threaded ChainVerifier over the same bytes (its `addRecordBytes`, as both
 *   threads use it).
 * Beside each rate, the CPU it cost per event: the whole machine's, PostgreSQL's, the NATS
 * servers', this process's (the reader; the raw producer) and, where this machine runs the broker (deploy/local/kafka.sh's pid file), the broker's, with the part its JIT
 * compiler and collector threads took (a broker started minutes ago spends most of its CPU
 * compiling: that is not the pipeline's cost, and it falls on whichever phase runs first).
 * Everything it creates is deleted afterwards.
 */
const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 60_000);
const WARMUP = 3000;
const PUBLISH_CHUNK = 1000;
const LATENCY_EVENTS = 10_000;
const LATENCY_RATE = 2000;
const RAW_BATCH = 1000;
/** Bytes per raw send at most, like the writer's ~900 kB per partition and transaction (other services' large events land in the topic too). */
const RAW_BATCH_BYTES = 900 * 1024;
const RAW_IN_FLIGHT = 2;
const PARTITIONS = 6;
const PORT = 7105 + 4590;
/** Verification rounds (parallel, then single, alternated): the medians are reported (an odd number). */
const VERIFY_ROUNDS = Number(process.env.BENCH_AUDIT_VERIFY_ROUNDS ?? 5);
const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

interface CpuMark {
  machine: number;
  /** PostgreSQL's processes, the NATS servers' and this process's (the reader, the producer): where the rest of the machine's went. */
  postgres: number;
  nats: number;
  bench: number;
  broker?: ReturnType<typeof jvmCpuMsOf>;
}
/** The local broker's pid, when deploy/local/kafka.sh runs it on this machine (else only the machine's CPU is told). */
function localBrokerPid(): number | undefined {
  try {
    const pid = Number(readFileSync(join(infra('PALISADE_HOME'), 'run', 'kafka.pid'), 'utf8').trim());
    jvmCpuMsOf(pid);
    return pid;
  } catch {
    return undefined;
  }
}
const cpuMark = (brokerPid: number | undefined): CpuMark => ({
  ...serversCpuMs(),
  bench: cpuMsOf(process.pid),
  broker: brokerPid === undefined ? undefined : jvmCpuMsOf(brokerPid),
});
/** µs of CPU per event since `from`, by `<prefix>_machine…` and `<prefix>_broker…`. */
function cpuCostOf(prefix: string, from: CpuMark, to: CpuMark, events: number): Record<string, number> {
  const us = (ms: number) => round((ms * 1000) / events, 1);
  const out: Record<string, number> = {
    [`${prefix}_machine_cpu_us_per_event`]: us(to.machine - from.machine),
    [`${prefix}_postgres_cpu_us_per_event`]: us(to.postgres - from.postgres),
    [`${prefix}_nats_cpu_us_per_event`]: us(to.nats - from.nats),
    [`${prefix}_bench_cpu_us_per_event`]: us(to.bench - from.bench),
  };
  if (from.broker && to.broker) {
    out[`${prefix}_broker_cpu_us_per_event`] = us(to.broker.all - from.broker.all);
    out[`${prefix}_broker_jit_cpu_us_per_event`] = us(to.broker.jit - from.broker.jit);
    out[`${prefix}_broker_gc_cpu_us_per_event`] = us(to.broker.gc - from.broker.gc);
  }
  return out;
}

const ctx: EventFactoryContext = { source: 'billing', now: () => new Date(), newId: () => newEventId() };
const makeEvent = (n: number, tenants: readonly string[]): EventEnvelope =>
  buildEvent(ctx, {
    type: 'billing.usage.recorded',
    tenantId: tenants[n % tenants.length],
    actor: { type: 'agent', id: `agent-${n % 200}` },
    data: { meter: 'llm_tokens', quantity: 1200 + (n % 100), model: 'private-llm', sessionId: `s-${n % 1000}` },
  });

export async function auditBenchmark(): Promise<Record<string, number>> {
  const suffix = randomBytes(4).toString('hex');
  const topic = `palisade.audit.bench-${suffix}`;
  const checkpointTopic = `${topic}-checkpoints`;
  const rawTopic = `${topic}-raw`;
  const tenants = Array.from({ length: 24 }, (_, i) => `bench-${suffix}-t${i}`);
  const ownKeyPrefix = Buffer.from(`bench-${suffix}-t`);
  const kekDir = mkdtempSync(join(tmpdir(), 'audit-bench-'));
  const identity = await ServiceIdentity.fromDevCa({ caDir: infra('PALISADE_PKI_DIR'), kind: 'admin', name: 'platform' });
  const nc = await connectNats({ servers: infra('NATS_URL'), identity, name: `audit-bench-${suffix}` });
  const jsm = await nc.jetstreamManager();
  const deleteDurable = () => jsm.consumers.delete(EVENTS_STREAM, 'audit-bench').catch(() => undefined);
  await deleteDurable();
  const kafka = kafkaClient({ brokers: infra('KAFKA_BROKERS'), identity, clientId: 'audit-bench', logLevel: 'error' });
  const admin = kafka.admin();
  await admin.connect();
  const db = await createTestSchema('auditbench');
  const publisher = new JetStreamEventPublisher(nc);
  const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench', alg: 'EdDSA', use: 'sig' };
  const brokerPid = localBrokerPid();
  const startService = () => runner.startServices({
    services: ['audit'],
    env: {
      LOG_LEVEL: 'warn',
      HTTP_PORT: String(PORT),
      PGDATABASE: 'palisade_test',
      PGUSER: 'palisade_test',
      PG_MIGRATION_USER: 'palisade_test_owner',
      PG_SCHEMA: db.schema,
      AUDIT_TOPIC: topic,
      AUDIT_CHECKPOINT_TOPIC: checkpointTopic,
      AUDIT_PARTITIONS: String(PARTITIONS),
      AUDIT_CONSUMER: 'bench',
      AUDIT_DELIVER_POLICY: 'new',
      AUDIT_KEK_FILE: join(kekDir, 'kek.key'),
      AUTH_JWKS: JSON.stringify({ keys: [jwk] }),
    },
    logDir: join(infra('PALISADE_HOME'), 'logs', 'audit-bench'),
  })[0] as { port: number; child: { pid?: number }; stop(signal?: string): Promise<unknown> };
  let service: ReturnType<typeof startService> | undefined;
  let parallel: ParallelChainVerifier | undefined;
  const consumer = kafka.consumer({ groupId: `palisade-audit-bench-${suffix}`, readUncommitted: false, maxWaitTimeInMs: 20, maxBytes: 50 * 1024 * 1024 });
  try {
    const publishedAt = new Map<string, number>();
    const latencies: number[] = [];
    const values = new Map<number, Buffer[]>();
    let seen = 0;
    let lastSeenAt = 0;
    let waiter: { count: number; resolve: () => void } | undefined;
    const startReading = async () => {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
      eachBatch: async ({ batch }) => {
        const now = performance.now();
        const list = values.get(batch.partition) ?? values.set(batch.partition, []).get(batch.partition)!;
        let ours = 0;
        for (const m of batch.messages) {
          list.push(m.value!);
          // Other services' events reach the durable too (palisade.events.>), and a busy
          // machine's can fill the counts: only this run's tenants (the record key) count,
          // by bytes, without parsing.
          if (m.key === null || m.key.length <= ownKeyPrefix.length || ownKeyPrefix.compare(m.key, 0, ownKeyPrefix.length) !== 0) continue;
          ours++;
          // Parsed only in the latency phase: during the drain the reader keeps off the CPU.
          if (publishedAt.size === 0) continue;
          const at = publishedAt.get((JSON.parse(m.value!.toString('utf8')) as { event: { id: string } }).event.id);
          if (at !== undefined) latencies.push(now - at);
        }
        if (ours === 0) return;
        seen += ours;
        lastSeenAt = now;
        if (waiter && seen >= waiter.count) waiter.resolve();
      },
      });
    };
    const untilSeen = (count: number) => (seen >= count ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { count, resolve })));
    const publish = async (from: number, count: number, track: boolean) => {
      for (let i = 0; i < count; i += PUBLISH_CHUNK) {
        const events = Array.from({ length: Math.min(PUBLISH_CHUNK, count - i) }, (_, k) => makeEvent(from + i + k, tenants));
        const now = performance.now();
        if (track) for (const e of events) publishedAt.set(e.id, now);
        await publisher.publish(events);
      }
    };

    // Throughput: a backlog of WARMUP + EVENTS events waits in JetStream for the durable
    // (created here as the service would), then the service starts and drains it; the
    // rate is taken from the WARMUP-th record (startup, recovery and JIT behind) to the last.
    await jsm.consumers.add(EVENTS_STREAM, {
      durable_name: 'audit-bench',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: 'palisade.events.>',
      ack_wait: 30_000_000_000,
      max_deliver: -1,
      max_ack_pending: 40_000,
    });
    await publish(0, WARMUP + EVENTS, false);
    service = startService();
    await runner.waitReady([service], { timeoutMs: 120_000 });
    const jwks = (await fetchJwks(service.port)) as Jwks;
    await startReading();
    await untilSeen(WARMUP);
    const start = lastSeenAt;
    const cpuStart = cpuMsOf(service.child.pid);
    const ingestMark = cpuMark(brokerPid);
    await untilSeen(WARMUP + EVENTS);
    const ingestRate = EVENTS / ((lastSeenAt - start) / 1000);
    const ingestCpu = cpuCostOf('ingest', ingestMark, cpuMark(brokerPid), EVENTS);
    // CPU the service spent per event while draining: what a loaded machine does not change.
    const cpuPerEvent = ((cpuMsOf(service.child.pid) - cpuStart) * 1000) / EVENTS;
    // Latency: publish → visible, at a steady LATENCY_RATE (not a backlog).
    for (let i = 0; i < LATENCY_EVENTS; i += LATENCY_RATE / 10) {
      const tick = performance.now();
      await publish(WARMUP + EVENTS + i, LATENCY_RATE / 10, true);
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - tick))));
    }
    await untilSeen(WARMUP + EVENTS + LATENCY_EVENTS);
    const { p99 } = summarize(latencies);
    await consumer.stop();

    // The raw producer: the same record values, same broker, batches like the writer's.
    // Records up to 8 MiB, like the audit topic (a skewed partition's batch of 1,000 was once refused as too large).
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: rawTopic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: String(8 * 1024 * 1024) }] }] });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
    await producer.connect();
    // Interleaved over the partitions like the writer's batches (a request per broker holds every partition's share).
    const all: Array<{ partition: number; value: Buffer }> = [];
    const longest = Math.max(...[...values.values()].map((l) => l.length));
    for (let i = 0; i < longest; i++) for (const [partition, list] of values) if (i < list.length) all.push({ partition, value: list[i] });
    process.stderr.write(`audit: records per partition ${JSON.stringify(Object.fromEntries([...values].map(([p, l]) => [p, l.length])))}, ${all[0]?.value.length ?? 0} bytes each (largest ${all.reduce((most, r) => Math.max(most, r.value.length), 0)})\n`);
    const rawStart = performance.now();
    const rawMark = cpuMark(brokerPid);
    let next = 0;
    await Promise.all(
      Array.from({ length: RAW_IN_FLIGHT }, async () => {
        while (next < all.length) {
          const batch: typeof all = [];
          for (let bytes = 0; next < all.length && batch.length < RAW_BATCH && (batch.length === 0 || bytes + all[next].value.length <= RAW_BATCH_BYTES); next++) {
            bytes += all[next].value.length;
            batch.push(all[next]);
          }
          await producer.send({ topic: rawTopic, acks: -1, messages: batch });
        }
      }),
    );
    const rawRate = all.length / ((performance.now() - rawStart) / 1000);
    const rawCpu = cpuCostOf('raw', rawMark, cpuMark(brokerPid), all.length);
    await producer.disconnect();

    // Verification speed over everything the service wrote, with its checkpoints, the
    // records handed over with their partitions interleaved, as a reader gets them.
    // Other engineers' events keep coming after the reader stopped: only the checkpoints
    // sealing what was read (the topic is new: a partition's n-th record has seq n).
    const checkpoints = (await readAll(kafka, admin, checkpointTopic)).filter((cp) => {
      const { partition, seq } = cp as { partition: number; seq: number };
      return seq <= (values.get(partition)?.length ?? 0);
    });
    // The service and the reader are done: stopped before the verifiers run, which else share
    // the two cores with whatever they still do (the service's timers, the reader's heartbeats).
    await service.stop('SIGTERM');
    service = undefined;
    await consumer.disconnect();
    // The worker starts and warms up before the hand-over, as a live reader's do while it
    // connects (this thread warms up when it makes the verifier); not before the drain,
    // which would leave it idle for a minute (40 s idle cost 10–20 % more CPU, measured;
    // V8's bytecode flushing, probably). 2 threads: this one verifies a share itself (the
    // records are in its memory: copying them out to a second worker cost CPU on top).
    // Rounds alternate parallel and single over the same bytes and the medians are
    // reported: one verification takes ~0.2 s, where one descheduling on 2 cores moves a
    // figure by a tenth.
    const verifyParallel = async () => {
      parallel = new ParallelChainVerifier({ jwks, threads: 2 });
      await parallel.ready();
      const verifyStart = performance.now();
      const processCpuStart = cpuMsOf(process.pid);
      // A reader knows its offset ranges before it reads: the partitions spread by size.
      parallel.plan(new Map([...values].map(([p, list]) => [p, list.length])));
      for (const cp of checkpoints) parallel.addCheckpoint(cp);
      for (const r of all) parallel.addRecord(r.partition, r.value);
      const fed = performance.now();
      const result = await parallel.finish();
      const verifyEnd = performance.now();
      const processCpuMs = cpuMsOf(process.pid) - processCpuStart;
      process.stderr.write(`audit: parallel verification ${Math.round(verifyEnd - verifyStart)} ms: records given in ${Math.round(fed - verifyStart)} ms (${Math.round(parallel.waitedMs)} of them waiting for a worker's buffer), finish ${Math.round(verifyEnd - fed)} ms; the process's CPU meanwhile ${processCpuMs} ms, all threads (V8's compiler and collector threads too)\n`);
      // On a loaded machine the threads wait for a core: their CPU says what two free cores would give.
      process.stderr.write(`audit: verification CPU, worker + this thread: ${parallel.cpuMs.map((ms) => Math.round(ms)).join(' + ')} ms (the worker's warm-up included), ${parallel.verifyCpuMs.map((ms) => Math.round(ms)).join(' + ')} ms verifying (this thread's with the hand-over), for ${result.records} records\n`);
      if (!result.ok) throw new Error(`the benchmark's audit topic does not verify: ${JSON.stringify(result.failure)}`);
      // Other engineers' events published meanwhile land in the topic too: at least ours.
      if (result.records < WARMUP + EVENTS + LATENCY_EVENTS) throw new Error(`expected at least ${WARMUP + EVENTS + LATENCY_EVENTS} records, verified ${result.records}`);
      const busiestCpuMs = Math.max(...parallel.verifyCpuMs);
      await parallel.close();
      parallel = undefined;
      return { records: result.records, rate: result.records / ((verifyEnd - verifyStart) / 1000), busiestCpuMs };
    };
    // The single-threaded ChainVerifier over the same bytes in the same order, warmed up
    // as the parallel verifier's threads are (else its figure depends on whether this
    // thread has verified before: it had not while the parallel verifier only handed over,
    // and the single verifier paid its JIT warm-up in its time, ~10 % of its CPU).
    const verifySingle = (records: number) => {
      warmUpVerifier();
      const single = new ChainVerifier({ keys: keysOf(jwks) });
      const singleStart = performance.now();
      const singleCpuStart = process.threadCpuUsage();
      for (const cp of checkpoints) single.addCheckpoint(cp);
      for (const r of all) single.addRecordBytes(r.value, r.partition);
      const singleResult = single.finish();
      const rate = singleResult.records / ((performance.now() - singleStart) / 1000);
      const singleCpu = process.threadCpuUsage(singleCpuStart);
      const cpuMs = (singleCpu.user + singleCpu.system) / 1000;
      process.stderr.write(`audit: single-threaded verification ${Math.round(singleResult.records / (rate / 1000))} ms, CPU ${Math.round(cpuMs)} ms\n`);
      if (!singleResult.ok || singleResult.records !== records) throw new Error(`the single-threaded verifier disagrees: ${JSON.stringify(singleResult.failure ?? singleResult.records)}`);
      return { rate, cpuMs };
    };
    const rounds: Array<{ parallel: Awaited<ReturnType<typeof verifyParallel>>; single: ReturnType<typeof verifySingle> }> = [];
    for (let i = 0; i < VERIFY_ROUNDS; i++) {
      const p = await verifyParallel();
      rounds.push({ parallel: p, single: verifySingle(p.records) });
    }
    process.stderr.write(`audit: verification rounds, parallel / single records/s: ${rounds.map((r) => `${Math.round(r.parallel.rate)} / ${Math.round(r.single.rate)}`).join(', ')}\n`);
    const verifyRate = median(rounds.map((r) => r.parallel.rate));
    const singleRate = median(rounds.map((r) => r.single.rate));
    const cpuSpeedup = median(rounds.map((r) => r.single.cpuMs / r.parallel.busiestCpuMs));

    return {
      ingest_events_per_s: Math.round(ingestRate),
      ingest_p99_ms: round(p99, 1),
      ingest_service_cpu_us_per_event: round(cpuPerEvent, 1),
      raw_producer_events_per_s: Math.round(rawRate),
      ratio: round(ingestRate / rawRate, 3),
      ...ingestCpu,
      ...rawCpu,
      // the ratio by the machine's CPU per event (the raw producer's over the pipeline's): what a run's load changes least
      cpu_ratio: round(rawCpu.raw_machine_cpu_us_per_event / ingestCpu.ingest_machine_cpu_us_per_event, 3),
      verify_records_per_s: Math.round(verifyRate),
      verify_single_records_per_s: Math.round(singleRate),
      verify_speedup: round(verifyRate / singleRate, 2),
      // By CPU time (what a loaded machine changes least; one process gets one share of the
      // CPU under Linux's autogroup, whatever its threads): the busiest thread's verifying CPU
      // against the single verifier's, i.e. the speed-up on free cores.
      verify_cpu_speedup: round(cpuSpeedup, 2),
    };
  } finally {
    await parallel?.close();
    await consumer.disconnect().catch(() => undefined);
    await service?.stop('SIGTERM');
    await deleteDurable();
    await admin.deleteTopics({ topics: [topic, checkpointTopic, rawTopic] }).catch(() => undefined);
    await admin.disconnect();
    publisher.close();
    await nc.drain();
    identity.stop();
    await db.drop();
    rmSync(kekDir, { recursive: true, force: true });
  }
}

async function fetchJwks(port: number): Promise<unknown> {
  const reply = await runner.get(`https://127.0.0.1:${port}/v1/audit/keys`, readFileSync(join(infra('PALISADE_PKI_DIR'), 'ca.crt')));
  if (reply.status !== 200) throw new Error(`GET /v1/audit/keys answered ${reply.status}`);
  return JSON.parse(reply.body);
}

/** Every value of a (small) topic, read_committed, up to its end now. */
async function readAll(kafka: Kafka, admin: Admin, topic: string): Promise<unknown[]> {
  const out: unknown[] = [];
  await readRange(kafka, topic, new Map(), await endOffsets(admin, topic), async (batch) => {
    for (const r of batch) out.push(JSON.parse(r.value));
  }, { groupPrefix: 'palisade-audit-bench' });
  return out;
}
