import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { appendToChain, emptyHead, keysOf, type Jwks } from './format';
import { IdLog } from './id-log';
import { ChainVerifier, type VerificationFailure, type VerificationResult } from './verifier';
import { doubled } from './doubled';

export interface ParallelVerifierOptions {
  jwks: Jwks;
  allowLaterStart?: boolean;
  /** Threads verifying (default: the machine's parallelism): the calling thread and threads − 1 workers, or `threads` workers when `readerOnly`. */
  threads?: number;
  /**
   * The calling thread only hands records over, to `threads` workers: for a reader whose
   * own work is heavy (reading Kafka). Default: it verifies one share of the partitions
   * itself, as a worker would, since copying records out to another worker costs the
   * caller CPU too (~0.4 µs a record) and that thread's core is otherwise idle.
   */
  readerOnly?: boolean;
  /** Bytes of records gathered for a worker before they are handed over (default 256 KiB). */
  batchBytes?: number;
  /**
   * Batch buffers per worker that may be handed over and not yet given back (default 3).
   * A reader that gets ahead of the workers by that many waits (blocking) for one to come
   * back: the same memory is reused, warm, instead of fresh pages for every batch.
   */
  buffersPerWorker?: number;
}

/** What a worker answers at the end. */
interface WorkerReply {
  result: VerificationResult;
  /** A 52-bit hash of each event id it verified, ascending: equal ids have equal hashes. */
  hashes: Float64Array;
  /** CPU the worker's thread used, warm-up included (ms). */
  cpuMs: number;
  /** CPU it used after its warm-up: verifying (ms). */
  verifyCpuMs: number;
  /** Where its failure was met: the share's n-th checkpoint or record (0-based); null: at the end (a cut tail) or none. */
  at: { checkpoint: number } | { record: number } | null;
}

/** What a worker answers when asked for its ids (two workers' hashes met). */
export interface IdsReply {
  /** JSON of { partition: event ids in seq order from `result.partitions[p].first` }. */
  ids: string;
  /** JSON of the event ids in the order verified: the i-th is the share's i-th record. */
  order: string;
}

/** A share's event ids, as it answers `{ ids: true }` (a worker, or the calling thread for its own share). */
export function idsReplyOf(log: IdLog, verifier: ChainVerifier): IdsReply {
  return { ids: log.idsJson(verifier.verifiedEventIds()), order: JSON.stringify([...verifier.verifiedEventIds()]) };
}

/** Records of the warm-up chain. */
const WARM_RECORDS = 2000;
/** Times a worker verifies the warm-up chain as batches (see warmUpVerifier). */
const WARM_BATCH_ROUNDS = 12;

/**
 * Load what verifying loads lazily (hashing, the byte scanner, JCS) and let the JIT see the
 * hot paths, on a throwaway chain of 2,000 records (ids shaped as UUIDs, as events have them): what a verifying thread does before its
 * first record (a worker while the reader connects, the calling thread when it is made).
 * `batches`: also verify that chain as handed-over batches are (`verifyBatch`), a dozen
 * times: a worker's isolate is new, and with only one pass its code was still being
 * optimised while the real records came (measured: 80–150 ms of V8's compiler threads per
 * verification of 73,000 records, on the two cores the verifiers needed; after this, ~10).
 * `handOver`: the calling thread's paths as many times (copying records into a batch, its
 * own share verified with an id log), which it otherwise compiled during the first records.
 */
export function warmUpVerifier(options: { batches?: boolean; handOver?: boolean } = {}): void {
  // Batches are transferred (their ArrayBuffers detached): the first detach in a thread
  // throws away every optimised function that reads typed arrays (V8's detaching
  // protector), so it happens here, before they are optimised, not at the first hand-over.
  const detached = new ArrayBuffer(8);
  structuredClone(detached, { transfer: [detached] });
  // Two verifiers, each given the whole chain: one record given to both would be a replay to the second.
  const warmBytes = new ChainVerifier({ keys: new Map() });
  const warmParsed = new ChainVerifier({ keys: new Map() });
  const values: Buffer[] = [];
  let head = emptyHead(0);
  for (let i = 0; i < WARM_RECORDS; i++) {
    const next = appendToChain(head, { id: `00000000-0000-7000-8000-${i.toString(16).padStart(12, '0')}`, type: 'warm.up', source: 'audit', tenantId: 'warm', actor: { type: 'system', id: 'warm' }, occurredAt: '2026-01-01T00:00:00.000Z', data: { i, s: `x${i}` } }, '2026-01-01T00:00:00.000Z');
    head = next.head;
    values.push(Buffer.from(next.value));
    warmBytes.addRecordBytes(values[i], 0);
    if (i < 200) warmParsed.addRecord(JSON.parse(next.value));
  }
  const bytes = warmBytes.finish();
  const parsed = warmParsed.finish();
  if (!bytes.ok || bytes.records !== WARM_RECORDS || !parsed.ok || parsed.records !== 200) throw new Error(`the warm-up chain did not verify: ${JSON.stringify({ bytes, parsed })}`);
  const size = values.reduce((n, v) => n + v.byteLength, 0);
  // a fresh verifier with an id log per round, as a share has
  const rounds = (verify: (verifier: ChainVerifier) => boolean) => {
    for (let round = 0; round < WARM_BATCH_ROUNDS; round++) {
      const log = new IdLog();
      const verifier = new ChainVerifier({ keys: new Map(), onRecord: log.onRecord });
      if (!verify(verifier) || !verifier.finish().ok) throw new Error('the warm-up chain did not verify');
      log.sortedHashes();
    }
  };
  // the calling thread's own paths: records copied into a batch for a worker, its share verified
  if (options.handOver) {
    rounds((verifier) => {
      const copied = new Gathering(batchBuffers(size));
      for (const v of values) copied.add(0, v);
      return values.every((v) => verifier.addRecordBytes(v, 0));
    });
  }
  if (options.batches) {
    const batch = new Gathering(batchBuffers(size));
    for (const v of values) batch.add(0, v);
    rounds((verifier) => verifyBatch(verifier, Buffer.from(batch.bytes.buffer, 0, batch.length), batch.ends, batch.partitions, batch.count) === -1);
  }
}

/**
 * A handed-over batch into `verifier`: record i is bytes[ends[i-1] … ends[i]) from
 * partition partitions[i]. The index of the record where a failure was met, or −1.
 */
export function verifyBatch(verifier: ChainVerifier, bytes: Buffer, ends: Uint32Array, partitions: Int32Array, count: number): number {
  let start = 0;
  for (let i = 0; i < count; i++) {
    if (!verifier.addRecordBytes(bytes, partitions[i], start, ends[i])) return i;
    start = ends[i];
  }
  return -1;
}

/**
 * The worker's code. It loads this package's build (dist/), so the package must be
 * built (`tsc -b libs/audit-log`) — the service, the CLI and the benchmark run from it.
 * Messages: `{ checkpoints }`, `{ bytes, length, ends, partitions, count }` (a batch of
 * `count` records in one transferred buffer: record i is bytes[ends[i-1] … ends[i]), read
 * from partition partitions[i]; verified in place, and the three buffers transferred back
 * on `workerData.spent`, a port of its own, with `workerData.returned[0]` counted up and
 * notified, so that a reader blocked waiting for a buffer wakes), `{ finish: true }`. It says `{ ready: true }` once warm,
 * `{ failed: true }` once at its first failure
 * (so a reader can stop) and `{ result, hashes, at }` when finished; asked `{ ids: true }` after
 * that, it answers `{ ids, order }`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const lib = require(workerData.module);
// Warm up while the reader connects.
lib.warmUpVerifier({ batches: true });
const warmedUp = process.threadCpuUsage();
parentPort.postMessage({ ready: true });
const log = new lib.IdLog();
const verifier = new lib.ChainVerifier({ keys: lib.keysOf(workerData.jwks), allowLaterStart: workerData.allowLaterStart, onRecord: log.onRecord });
let ok = true;
// Checkpoints and records given so far, and where the failure was met (the coordinator knows their order in the input).
let checkpoints = 0;
let records = 0;
let at = null;
parentPort.on('message', (m) => {
  if (m.checkpoints) {
    for (const cp of m.checkpoints) {
      if (ok && !(ok = verifier.addCheckpoint(cp))) { at = { checkpoint: checkpoints }; parentPort.postMessage({ failed: true }); }
      checkpoints++;
    }
  } else if (m.bytes) {
    if (ok) {
      const failedAt = lib.verifyBatch(verifier, Buffer.from(m.bytes, 0, m.length), new Uint32Array(m.ends, 0, m.count), new Int32Array(m.partitions, 0, m.count), m.count);
      if (failedAt >= 0) { ok = false; at = { record: records + failedAt }; parentPort.postMessage({ failed: true }); }
    }
    records += m.count;
    workerData.spent.postMessage({ bytes: m.bytes, ends: m.ends, partitions: m.partitions }, [m.bytes, m.ends, m.partitions]);
    Atomics.add(workerData.returned, 0, 1);
    Atomics.notify(workerData.returned, 0);
  } else if (m.finish) {
    const hashes = log.sortedHashes();
    const result = verifier.finish();
    const cpu = process.threadCpuUsage();
    const verifyCpu = process.threadCpuUsage(warmedUp);
    parentPort.postMessage({ result, hashes, at, cpuMs: (cpu.user + cpu.system) / 1000, verifyCpuMs: (verifyCpu.user + verifyCpu.system) / 1000 }, [hashes.buffer]);
  } else if (m.ids) {
    parentPort.postMessage(lib.idsReplyOf(log, verifier));
  }
});
`;

/** 256 KiB: a worker is behind the reader by at most its buffers (3 batches), which it verifies after the last record is given: with 1 MiB that tail was 16-26 ms of a 130-150 ms verification (43,001 records), with 256 KiB 10. */
const DEFAULT_BATCH_BYTES = 1 << 18;
const DEFAULT_BUFFERS_PER_WORKER = 3;
/** The longest a reader waits for a worker to give a buffer back (a worker that died never will): then it allocates, as without a pool. */
const WAIT_FOR_BUFFER_MS = 5000;
const encoder = new TextEncoder();

/** The three buffers of a batch: handed over to a worker, given back once verified. */
interface BatchBuffers {
  bytes: ArrayBuffer;
  ends: ArrayBuffer;
  partitions: ArrayBuffer;
}

function batchBuffers(capacity: number): BatchBuffers {
  const bytes = new ArrayBuffer(capacity);
  // Written once now, so the pages are mapped before the first record is copied in.
  new Uint8Array(bytes).fill(0);
  const records = Math.max(16, capacity >> 8);
  return { bytes, ends: new ArrayBuffer(records * 4), partitions: new ArrayBuffer(records * 4) };
}

/**
 * The batch buffers of every worker, reused as the workers give them back: a fresh 2 MiB
 * buffer for each 1 MiB batch cost the reader more CPU (page faults, zeroing) than copying
 * the records in. At most `limit` exist; when all are with the workers, the reader waits
 * for one (`Atomics.wait` on the count the workers raise, the buffers taken with
 * `receiveMessageOnPort`: synchronous, as `addRecord` is), which paces a reader that is
 * faster than the workers instead of letting it fill memory. A wait that times out (a
 * worker died) ends the pacing: from then on a buffer is allocated when none is free.
 */
class BufferPool {
  private readonly free: BatchBuffers[] = [];
  /** Time the reader spent waiting for a worker to give a buffer back (ms). */
  waitedMs = 0;
  private pacing = true;

  constructor(
    readonly capacity: number,
    limit: number,
    private readonly ports: readonly MessagePort[],
    private readonly returned: Int32Array,
  ) {
    for (let i = 0; i < limit; i++) this.free.push(batchBuffers(capacity));
  }

  take(): BatchBuffers {
    for (;;) {
      const seen = Atomics.load(this.returned, 0);
      this.collect();
      const free = this.free.pop();
      if (free) return free;
      if (!this.pacing) return batchBuffers(this.capacity);
      const from = performance.now();
      const waited = Atomics.wait(this.returned, 0, seen, WAIT_FOR_BUFFER_MS);
      this.waitedMs += performance.now() - from;
      if (waited === 'timed-out') this.pacing = false;
    }
  }

  /** Buffers not handed over after all (a record larger than they hold came). */
  give(buffers: BatchBuffers): void {
    if (buffers.bytes.byteLength === this.capacity) this.free.push(buffers);
  }

  private collect(): void {
    for (const port of this.ports) {
      for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
        // Batches of one record larger than a batch had buffers of their own: not kept.
        this.give(m.message as BatchBuffers);
      }
    }
  }
}

/** Records gathered for one worker, not yet handed over: copied into one buffer as they come. */
class Gathering {
  bytes: Uint8Array<ArrayBuffer>;
  length = 0;
  ends: Uint32Array<ArrayBuffer>;
  partitions: Int32Array<ArrayBuffer>;
  count = 0;

  constructor(buffers: BatchBuffers) {
    this.bytes = new Uint8Array(buffers.bytes);
    this.ends = new Uint32Array(buffers.ends);
    this.partitions = new Int32Array(buffers.partitions);
  }

  get buffers(): BatchBuffers {
    return { bytes: this.bytes.buffer, ends: this.ends.buffer, partitions: this.partitions.buffer };
  }

  /** Room for `n` more bytes (false: hand over what is gathered first). */
  fits(n: number): boolean {
    return this.length + n <= this.bytes.byteLength;
  }

  add(partition: number, value: Uint8Array | string): void {
    if (typeof value === 'string') this.length += encoder.encodeInto(value, this.bytes.subarray(this.length)).written;
    else {
      this.bytes.set(value, this.length);
      this.length += value.byteLength;
    }
    if (this.count === this.ends.length) {
      this.ends = doubled(this.ends);
      this.partitions = doubled(this.partitions);
    }
    this.ends[this.count] = this.length;
    this.partitions[this.count++] = partition;
  }
}

/** The share of the partitions the calling thread verifies itself (unless `readerOnly`). */
class LocalShare {
  readonly log = new IdLog();
  readonly verifier: ChainVerifier;
  /** The calling thread's CPU when its first record or checkpoint came (µs). */
  private cpuFrom: NodeJS.CpuUsage | undefined;
  private checkpoints = 0;
  private records = 0;
  private at: WorkerReply['at'] = null;

  constructor(jwks: Jwks, allowLaterStart: boolean) {
    warmUpVerifier({ handOver: true });
    this.verifier = new ChainVerifier({ keys: keysOf(jwks), allowLaterStart, onRecord: this.log.onRecord });
  }

  started(): void {
    this.cpuFrom ??= process.threadCpuUsage();
  }

  /** False once a failure is known (the first false is where it was met). */
  addCheckpoint(value: unknown): boolean {
    this.started();
    const ok = this.verifier.addCheckpoint(value);
    if (!ok) this.at ??= { checkpoint: this.checkpoints };
    this.checkpoints++;
    return ok;
  }

  addRecord(partition: number, value: Uint8Array | string): boolean {
    this.started();
    const ok = this.verifier.addRecordBytes(typeof value === 'string' ? Buffer.from(value, 'utf8') : value, partition);
    if (!ok) this.at ??= { record: this.records };
    this.records++;
    return ok;
  }

  /** Its verdict, as a worker's reply; its CPU is the calling thread's from its first record, the hand-over to the workers included. */
  finish(): WorkerReply {
    const result = this.verifier.finish();
    const cpu = process.threadCpuUsage(this.cpuFrom);
    const cpuMs = this.cpuFrom ? (cpu.user + cpu.system) / 1000 : 0;
    return { result, hashes: this.log.sortedHashes(), cpuMs, verifyCpuMs: cpuMs, at: this.at };
  }
}

/**
 * What handing a record over to a worker costs the calling thread, as a share of what
 * verifying it costs: measured 26 ms of hand-over against 152 ms of the worker's verifying
 * for the same 21,500 records (2026-12-05, the audit benchmark's 519-byte records).
 */
export const HAND_OVER_SHARE = 0.17;

/**
 * Which share verifies each partition: largest partition first, each to the share whose
 * finishing time it delays least. A worker's time is its records; the calling thread's
 * (`localShare`, when it verifies a share itself) is its own records plus the hand-over
 * of every record a worker gets (`handOverShare` of a verification each), so it is given
 * fewer. `placed` partitions keep their share and count.
 */
export function planShares(
  sizes: ReadonlyMap<number, number>,
  shares: number,
  localShare: number | undefined,
  placed: ReadonlyMap<number, number> = new Map(),
  handOverShare = HAND_OVER_SHARE,
): Map<number, number> {
  const own = new Array<number>(shares).fill(0);
  let handedOver = 0;
  const give = (share: number, size: number) => {
    own[share] += size;
    if (share !== localShare) handedOver += size;
  };
  const timeOf = (share: number, ownRecords: number, handed: number) => ownRecords + (share === localShare ? handOverShare * handed : 0);
  for (const [p, share] of placed) give(share, sizes.get(p) ?? 0);
  const owners = new Map<number, number>();
  for (const [p, size] of [...sizes].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
    if (placed.has(p)) continue;
    let best = 0;
    let bestFinish = Infinity;
    for (let candidate = 0; candidate < shares; candidate++) {
      const handed = handedOver + (candidate === localShare ? 0 : size);
      let finish = 0;
      for (let share = 0; share < shares; share++) finish = Math.max(finish, timeOf(share, own[share] + (share === candidate ? size : 0), handed));
      if (finish < bestFinish) [best, bestFinish] = [candidate, finish];
    }
    owners.set(p, best);
    give(best, size);
  }
  return owners;
}

/**
 * Verification of a topic's partitions on several threads, fed while it is read: the
 * workers start when it is made (before the reader asks Kafka for anything); each share
 * of the partitions gets a ChainVerifier (hash, links, seq, checkpoints, ids within its
 * partitions): the calling thread's share is verified as it is given, the workers' shares
 * are gathered into large batches whose bytes are transferred, not copied (with
 * `readerOnly`, every share is a worker's); event ids repeated across shares are checked
 * at the end. Give it every checkpoint first (`addCheckpoint`), then each partition's
 * records in offset order (`addRecord`, partitions may interleave), then `finish()`. Same
 * verdict as a single ChainVerifier fed the same input in the same order: each share says
 * where its failure was met (its n-th checkpoint or record), which the coordinator maps
 * back to the input's order, and the failure met first in it is reported; a cut tail is
 * found at the end, so only when nothing else failed, the lowest partition's.
 */
export class ParallelChainVerifier {
  private readonly workers: Worker[];
  private readonly replies: Array<Promise<WorkerReply>>;
  private readonly idReplies: Array<(reply: IdsReply) => void> = [];
  /** partition -> share: a worker's index, or `workers.length` for the calling thread's. */
  private readonly owners = new Map<number, number>();
  private readonly shares: number;
  private readonly local: LocalShare | undefined;
  private readonly gathering: Gathering[];
  private readonly pool: BufferPool;
  /** Where the workers give batch buffers back (closed with them). */
  private readonly spentPorts: MessagePort[];
  private readonly checkpointsOf: unknown[][];
  private readonly batchBytes: number;
  /** Checkpoints and records given so far: the next one's place in the input. */
  private given = 0;
  /** Per share: the place in the input of each checkpoint it was given. */
  private readonly checkpointPlaces: number[][];
  /** Per share: records it was given, and runs of them consecutive in the input, as [place, share's index] pairs. */
  private readonly recordCounts: number[];
  private readonly recordRuns: number[][];
  private failedEarly = false;
  private readyCount = 0;
  private readonly warm: Promise<void>;
  private warmed!: () => void;
  /** After finish(): the CPU of each share's thread, a worker's warm-up included (ms), for measurements; the calling thread's last. */
  cpuMs: number[] = [];
  /** After finish(): the CPU each share used verifying (ms): a worker's after its warm-up; the calling thread's from its first record, hand-over included. */
  verifyCpuMs: number[] = [];

  /** Time the calling thread spent waiting for a worker to give a batch buffer back (ms): a worker behind the reader. */
  get waitedMs(): number {
    return this.pool.waitedMs;
  }
  private finished = false;

  constructor(options: ParallelVerifierOptions) {
    this.shares = Math.max(1, options.threads ?? availableParallelism());
    const workerCount = options.readerOnly ? this.shares : this.shares - 1;
    const allowLaterStart = options.allowLaterStart ?? false;
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    const returned = new Int32Array(new SharedArrayBuffer(4));
    const channels = Array.from({ length: workerCount }, () => new MessageChannel());
    this.spentPorts = channels.map((c) => c.port1);
    this.warm = new Promise<void>((resolve) => (this.warmed = resolve));
    if (workerCount === 0) this.warmed();
    this.workers = channels.map(
      ({ port2: spent }) =>
        new Worker(WORKER_SOURCE, {
          eval: true,
          workerData: { module: join(__dirname, '..', 'dist', 'index.js'), jwks: options.jwks, allowLaterStart, spent, returned },
          transferList: [spent],
        }),
    );
    this.replies = this.workers.map(
      (worker) =>
        new Promise<WorkerReply>((resolve, reject) => {
          worker.on('message', (m: WorkerReply | IdsReply | { failed: true } | { ready: true }) => {
            if ('ready' in m) {
              if (++this.readyCount === this.workers.length) this.warmed();
            }
            else if ('failed' in m) this.failedEarly = true;
            else if ('ids' in m) this.idReplies.shift()?.(m);
            else resolve(m);
          });
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`verification worker exited with code ${code}`)));
        }),
    );
    // Seen only when finish() awaits them; a worker dying earlier must not be unhandled.
    for (const r of this.replies) r.catch(() => undefined);
    // Twice a batch: a record of up to a batch always fits once the gathered ones are handed over.
    this.pool = new BufferPool(this.batchBytes * 2, workerCount * (options.buffersPerWorker ?? DEFAULT_BUFFERS_PER_WORKER), this.spentPorts, returned);
    this.gathering = this.workers.map(() => new Gathering(this.pool.take()));
    this.checkpointsOf = this.workers.map(() => []);
    this.checkpointPlaces = Array.from({ length: this.shares }, () => []);
    this.recordCounts = new Array<number>(this.shares).fill(0);
    this.recordRuns = Array.from({ length: this.shares }, () => []);
    // After the workers are started: they warm up meanwhile.
    this.local = options.readerOnly ? undefined : new LocalShare(options.jwks, allowLaterStart);
  }

  /**
   * Spread the partitions over the shares by how many records each will bring (a reader
   * knows its offset ranges before it reads): `planShares`. Partitions already placed stay
   * where they are.
   */
  plan(sizes: ReadonlyMap<number, number>): void {
    const localShare = this.local ? this.workers.length : undefined;
    for (const [p, w] of planShares(sizes, this.shares, localShare, this.owners)) this.owners.set(p, w);
  }

  /**
   * Resolves once every worker has warmed up. A reader need not wait (records handed over
   * before are queued); a measurement does, and should not leave the workers idle long
   * after it: 40 s idle cost them 10–20 % more CPU (V8's bytecode flushing, probably).
   */
  async ready(): Promise<void> {
    // A worker that dies first rejects its reply: so does this.
    await Promise.race([this.warm, Promise.all(this.replies)]);
  }

  /** True once a share has found a failure: the rest need not be read. */
  get failed(): boolean {
    return this.failedEarly;
  }

  addCheckpoint(value: unknown): void {
    const partition = (value as { partition?: unknown } | null)?.partition;
    // Not a partition number: malformed, any share says so.
    const w = typeof partition === 'number' && Number.isInteger(partition) ? this.ownerOf(partition) : 0;
    this.checkpointPlaces[w].push(this.given++);
    if (w < this.workers.length) {
      // Given after records (late): those go first, as in the input.
      if (this.gathering[w].count > 0) this.handOver(w);
      this.checkpointsOf[w].push(value);
    } else if (!this.local!.addCheckpoint(value)) this.failedEarly = true;
  }

  /** A record value as read from `partition` (raw bytes or text). False once a failure is known. */
  addRecord(partition: number, value: Uint8Array | string): boolean {
    const w = this.ownerOf(partition);
    const place = this.given++;
    const index = this.recordCounts[w]++;
    const runs = this.recordRuns[w];
    // A new run unless it follows the share's previous record in the input.
    if (runs.length === 0 || runs[runs.length - 2] + (index - runs[runs.length - 1]) !== place) runs.push(place, index);
    if (w === this.workers.length) {
      if (!this.local!.addRecord(partition, value)) this.failedEarly = true;
      return !this.failedEarly;
    }
    // A string takes at most 3 bytes per UTF-16 unit.
    const most = typeof value === 'string' ? value.length * 3 : value.byteLength;
    if (!this.gathering[w].fits(most)) {
      this.handOver(w);
      if (!this.gathering[w].fits(most)) {
        this.pool.give(this.gathering[w].buffers);
        this.gathering[w] = new Gathering(batchBuffers(most));
      }
    }
    const g = this.gathering[w];
    g.add(partition, value);
    if (g.length >= this.batchBytes) this.handOver(w);
    return !this.failedEarly;
  }

  /** Hand what is gathered over, wait for every worker and merge the shares' verdicts. */
  async finish(): Promise<VerificationResult> {
    if (this.finished) throw new Error('ParallelChainVerifier.finish() called twice');
    this.finished = true;
    try {
      for (let w = 0; w < this.workers.length; w++) {
        this.sendCheckpoints(w);
        this.handOver(w);
        this.workers[w].postMessage({ finish: true });
      }
      const local = this.local?.finish();
      const replies = [...(await Promise.all(this.replies)), ...(local ? [local] : [])];
      this.cpuMs = replies.map((r) => r.cpuMs);
      this.verifyCpuMs = replies.map((r) => r.verifyCpuMs);
      // Ids can repeat across shares only where their hashes do; the ids themselves are
      // asked for only then (a repeat, or a rare hash collision), not for every record.
      const ids = replies.length > 1 && sortedListsMeet(replies.map((r) => r.hashes)) ? await this.idsOfShares() : undefined;
      return merge(replies, (share, at) => this.placeOf(share, at), ids);
    } finally {
      await this.close();
    }
  }

  /** Each share's event ids (after finish), one worker at a time. */
  private async idsOfShares(): Promise<IdsReply[]> {
    const out: IdsReply[] = [];
    for (const worker of this.workers) {
      const reply = new Promise<IdsReply>((resolve) => this.idReplies.push(resolve));
      worker.postMessage({ ids: true });
      out.push(await reply);
    }
    if (this.local) out.push(idsReplyOf(this.local.log, this.local.verifier));
    return out;
  }

  /** The place in the input of a share's n-th checkpoint or record (the shares are the workers, then the calling thread). */
  private placeOf(share: number, at: { checkpoint: number } | { record: number }): number {
    if ('checkpoint' in at) return this.checkpointPlaces[share][at.checkpoint];
    const runs = this.recordRuns[share];
    // The last run starting at or before the index.
    let lo = 0;
    let hi = runs.length / 2 - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (runs[2 * mid + 1] <= at.record) lo = mid;
      else hi = mid - 1;
    }
    return runs[2 * lo] + (at.record - runs[2 * lo + 1]);
  }

  /** Stop the workers (finish() does it; call it when giving up early). */
  async close(): Promise<void> {
    this.finished = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const port of this.spentPorts) port.close();
  }

  /** The share `plan()` placed a partition in, else round-robin in the order partitions are first seen. */
  private ownerOf(partition: number): number {
    let w = this.owners.get(partition);
    if (w === undefined) {
      w = this.owners.size % this.shares;
      this.owners.set(partition, w);
    }
    return w;
  }

  /** Checkpoints go before the records they seal: first, and again for any given late. */
  private sendCheckpoints(w: number): void {
    const list = this.checkpointsOf[w];
    if (list.length === 0) return;
    this.workers[w].postMessage({ checkpoints: list });
    this.checkpointsOf[w] = [];
  }

  private handOver(w: number): void {
    this.sendCheckpoints(w);
    const g = this.gathering[w];
    if (g.count === 0) return;
    const { bytes, length, ends, partitions, count } = g;
    this.workers[w].postMessage({ bytes: bytes.buffer, length, ends: ends.buffer, partitions: partitions.buffer, count }, [bytes.buffer, ends.buffer, partitions.buffer]);
    this.gathering[w] = new Gathering(this.pool.take());
  }
}

export interface ParallelVerifyInput {
  /** Each partition's record values (the raw JSON, as read from the topic), in offset order. */
  partitions: ReadonlyMap<number, ReadonlyArray<string | Uint8Array>>;
  /** Every checkpoint (parsed), any order. */
  checkpoints: readonly unknown[];
  jwks: Jwks;
  allowLaterStart?: boolean;
  /** Worker threads (default: the machine's parallelism, at most the partition count). */
  threads?: number;
}

/**
 * Verify partitions held in memory on worker threads (ParallelChainVerifier), the
 * largest partitions first, each to the least loaded worker.
 */
export async function verifyPartitionsInParallel(input: ParallelVerifyInput): Promise<VerificationResult> {
  const threads = Math.max(1, Math.min(input.threads ?? availableParallelism(), input.partitions.size));
  const verifier = new ParallelChainVerifier({ jwks: input.jwks, allowLaterStart: input.allowLaterStart, threads });
  verifier.plan(new Map([...input.partitions].map(([p, list]) => [p, list.length])));
  for (const cp of input.checkpoints) verifier.addCheckpoint(cp);
  for (const p of [...input.partitions.keys()].sort((a, b) => a - b)) for (const value of input.partitions.get(p)!) verifier.addRecord(p, value);
  return verifier.finish();
}

/**
 * Whether a hash appears in two of these lists, each sorted ascending (equal ids always
 * do; different ids almost never): a walk through each pair, no allocation (sorting all of
 * them together again took ~6 ms per 73,000 records on the calling thread, after the workers had
 * sorted their own).
 */
export function sortedListsMeet(lists: readonly Float64Array[]): boolean {
  for (let i = 0; i < lists.length; i++) {
    for (let j = i + 1; j < lists.length; j++) {
      const a = lists[i];
      const b = lists[j];
      for (let x = 0, y = 0; x < a.length && y < b.length; ) {
        if (a[x] === b[y]) return true;
        if (a[x] < b[y]) x++;
        else y++;
      }
    }
  }
  return false;
}

/**
 * The shares' verdicts as one: the failure a single verifier fed the same input would have
 * met first. `placeOf` maps where a share met its failure to its place in the input; `ids`
 * (each share's ids) only when their id hashes met: otherwise no event id appears in two shares.
 */
function merge(replies: readonly WorkerReply[], placeOf: (share: number, at: { checkpoint: number } | { record: number }) => number, ids?: readonly IdsReply[]): VerificationResult {
  const failures: Array<{ failure: VerificationFailure; place: number }> = [];
  const partitions: VerificationResult['partitions'] = {};
  let records = 0;
  let checkpoints = 0;
  replies.forEach(({ result, at }, share) => {
    records += result.records;
    checkpoints += result.checkpoints;
    Object.assign(partitions, result.partitions);
    // A failure met at the end (a cut tail) comes after every record.
    if (result.failure) failures.push({ failure: result.failure, place: at ? placeOf(share, at) : Infinity });
  });
  // Uniqueness of event ids across shares (each checked its own): the first record, in the
  // input's order, whose id an earlier one had. A share's i-th id is its i-th record's.
  if (ids) {
    const all: Array<{ place: number; id: string; partition: number; seq: number }> = [];
    ids.forEach((reply, share) => {
      const where = new Map<string, { partition: number; seq: number }>();
      const first = replies[share].result.partitions;
      for (const [p, list] of Object.entries(JSON.parse(reply.ids) as Record<string, string[]>)) list.forEach((id, i) => where.set(id, { partition: Number(p), seq: first[Number(p)].first + i }));
      (JSON.parse(reply.order) as string[]).forEach((id, i) => all.push({ place: placeOf(share, { record: i }), id, ...where.get(id)! }));
    });
    all.sort((a, b) => a.place - b.place);
    const seen = new Set<string>();
    for (const { place, id, partition, seq } of all) {
      if (seen.has(id)) {
        failures.push({ failure: { reason: 'duplicate_event', partition, seq, message: `event ${id} appears twice` }, place });
        break;
      }
      seen.add(id);
    }
  }
  // The first met; at one place a repeated id comes first (a verifier checks it before the
  // checkpoints at that seq); cut tails, all at the end, lowest partition first (as ChainVerifier.finish).
  const repeat = (f: VerificationFailure) => (f.reason === 'duplicate_event' ? 0 : 1);
  failures.sort((a, b) => a.place - b.place || repeat(a.failure) - repeat(b.failure) || (a.failure.partition ?? -1) - (b.failure.partition ?? -1));
  const sorted: VerificationResult['partitions'] = {};
  for (const p of Object.keys(partitions).map(Number).sort((a, b) => a - b)) sorted[p] = partitions[p];
  const result: VerificationResult = { ok: failures.length === 0, records, checkpoints, partitions: sorted };
  if (failures[0]) result.failure = failures[0].failure;
  return result;
}
