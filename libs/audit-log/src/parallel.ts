import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Jwks } from './format';
import type { VerificationFailure, VerificationResult } from './verifier';

export interface ParallelVerifierOptions {
  jwks: Jwks;
  allowLaterStart?: boolean;
  /** Worker threads (default: the machine's parallelism). */
  threads?: number;
  /** Bytes of records gathered for a worker before they are handed over (default 1 MiB). */
  batchBytes?: number;
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
}

/** What a worker answers when asked for its ids (two workers' hashes met). */
interface IdsReply {
  /** JSON of { partition: event ids in seq order from `result.partitions[p].first` }. */
  ids: string;
}

/**
 * The worker's code. It loads this package's build (dist/), so the package must be
 * built (`tsc -b libs/audit-log`) — the service, the CLI and the benchmark run from it.
 * Messages: `{ checkpoints }`, `{ bytes, length, ends, partitions, count }` (a batch of
 * `count` records in one transferred buffer: record i is bytes[ends[i-1] … ends[i]), read
 * from partition partitions[i]), `{ finish: true }`. It says `{ ready: true }` once warm,
 * `{ failed: true }` once at its first failure
 * (so a reader can stop) and `{ result, hashes }` when finished; asked `{ ids: true }` after
 * that, it answers `{ ids }`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const lib = require(workerData.module);
// Warm up while the reader connects: load what verifying loads lazily (hashing, the byte
// scanner, JCS) and let the JIT see the hot paths, on a throwaway chain.
{
  // Two verifiers, each given the whole chain: one record given to both would be a replay to the second.
  const warmBytes = new lib.ChainVerifier({ keys: new Map() });
  const warmParsed = new lib.ChainVerifier({ keys: new Map() });
  let head = lib.emptyHead(0);
  for (let i = 0; i < 2000; i++) {
    const next = lib.appendToChain(head, { id: 'warm-' + i, type: 'warm.up', source: 'audit', tenantId: 'warm', actor: { type: 'system', id: 'warm' }, occurredAt: '2026-01-01T00:00:00.000Z', data: { i, s: 'x' + i } }, '2026-01-01T00:00:00.000Z');
    head = next.head;
    warmBytes.addRecordBytes(Buffer.from(next.value), 0);
    if (i < 200) warmParsed.addRecord(JSON.parse(next.value));
  }
  const bytes = warmBytes.finish();
  const parsed = warmParsed.finish();
  if (!bytes.ok || bytes.records !== 2000 || !parsed.ok || parsed.records !== 200) throw new Error('the warm-up chain did not verify: ' + JSON.stringify({ bytes, parsed }));
}
const warmedUp = process.threadCpuUsage();
parentPort.postMessage({ ready: true });
const ids = {};
// A 52-bit hash of each event id verified, for the check across workers (exact when no two are equal).
let hashes = new Float64Array(1 << 14);
let hashCount = 0;
const idHash = (id) => {
  let a = 0x811c9dc5, b = 0x9e3779b9;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0) * 1048576 + (b >>> 12);
};
const onRecord = (partition, id) => {
  (ids[partition] ??= []).push(id);
  if (hashCount === hashes.length) { const more = new Float64Array(hashCount * 2); more.set(hashes); hashes = more; }
  hashes[hashCount++] = idHash(id);
};
const verifier = new lib.ChainVerifier({ keys: lib.keysOf(workerData.jwks), allowLaterStart: workerData.allowLaterStart, onRecord });
let ok = true;
parentPort.on('message', (m) => {
  if (m.checkpoints) {
    for (const cp of m.checkpoints) if (ok && !(ok = verifier.addCheckpoint(cp))) parentPort.postMessage({ failed: true });
  } else if (m.bytes) {
    if (!ok) return;
    const buf = Buffer.from(m.bytes, 0, m.length);
    const ends = new Uint32Array(m.ends, 0, m.count);
    const partitions = new Int32Array(m.partitions, 0, m.count);
    let start = 0;
    for (let i = 0; i < m.count; i++) {
      if (!verifier.addRecordBytes(buf.subarray(start, ends[i]), partitions[i])) { ok = false; parentPort.postMessage({ failed: true }); return; }
      start = ends[i];
    }
  } else if (m.finish) {
    const sorted = hashes.subarray(0, hashCount).sort();
    const result = verifier.finish();
    const cpu = process.threadCpuUsage();
    const verifyCpu = process.threadCpuUsage(warmedUp);
    parentPort.postMessage({ result, hashes: sorted, cpuMs: (cpu.user + cpu.system) / 1000, verifyCpuMs: (verifyCpu.user + verifyCpu.system) / 1000 }, [hashes.buffer]);
  } else if (m.ids) {
    parentPort.postMessage({ ids: JSON.stringify(ids) });
  }
});
`;

const DEFAULT_BATCH_BYTES = 1 << 20;
const encoder = new TextEncoder();

/** Records gathered for one worker, not yet handed over: copied into one buffer as they come. */
class Gathering {
  bytes: Uint8Array<ArrayBuffer>;
  length = 0;
  ends: Uint32Array<ArrayBuffer>;
  partitions: Int32Array<ArrayBuffer>;
  count = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.ends = new Uint32Array(Math.max(16, capacity >> 8));
    this.partitions = new Int32Array(this.ends.length);
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
      const ends = new Uint32Array(this.count * 2);
      ends.set(this.ends);
      this.ends = ends;
      const partitions = new Int32Array(this.count * 2);
      partitions.set(this.partitions);
      this.partitions = partitions;
    }
    this.ends[this.count] = this.length;
    this.partitions[this.count++] = partition;
  }
}

/**
 * Verification of a topic's partitions on worker threads, fed while it is read: the
 * workers start when it is made (before the reader asks Kafka for anything); each owns
 * some partitions and runs a ChainVerifier over them (hash, links, seq, checkpoints, ids
 * within its partitions). The reader only hands records over, as they come, gathered into
 * large batches whose bytes are transferred, not copied; event ids repeated across
 * workers are checked at the end. Give it every checkpoint first (`addCheckpoint`), then
 * each partition's records in offset order (`addRecord`, partitions may interleave),
 * then `finish()`. Same verdicts as a single ChainVerifier over the same input; when
 * several partitions fail, the failure of the lowest partition is reported.
 */
export class ParallelChainVerifier {
  private readonly workers: Worker[];
  private readonly replies: Array<Promise<WorkerReply>>;
  private readonly idReplies: Array<(reply: IdsReply) => void> = [];
  private readonly owners = new Map<number, number>();
  private readonly gathering: Gathering[];
  private readonly checkpointsOf: unknown[][];
  private readonly batchBytes: number;
  private failedEarly = false;
  private readyCount = 0;
  private readonly warm: Promise<void>;
  private warmed!: () => void;
  /** After finish(): the CPU each worker's thread used, warm-up included (ms), for measurements. */
  cpuMs: number[] = [];
  /** After finish(): the CPU each worker used after its warm-up, i.e. verifying (ms). */
  verifyCpuMs: number[] = [];
  private finished = false;

  constructor(options: ParallelVerifierOptions) {
    const threads = Math.max(1, options.threads ?? availableParallelism());
    this.batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    const workerData = { module: join(__dirname, '..', 'dist', 'index.js'), jwks: options.jwks, allowLaterStart: options.allowLaterStart ?? false };
    this.warm = new Promise<void>((resolve) => (this.warmed = resolve));
    this.workers = Array.from({ length: threads }, () => new Worker(WORKER_SOURCE, { eval: true, workerData }));
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
    this.gathering = this.workers.map(() => new Gathering(this.batchBytes * 2));
    this.checkpointsOf = this.workers.map(() => []);
  }

  /**
   * Spread the partitions over the workers by how many records each will bring (a reader
   * knows its offset ranges before it reads): largest first, each to the least loaded
   * worker. Partitions already placed stay where they are.
   */
  plan(sizes: ReadonlyMap<number, number>): void {
    const load = new Array<number>(this.workers.length).fill(0);
    for (const [p, w] of this.owners) load[w] += sizes.get(p) ?? 0;
    for (const [p, size] of [...sizes].sort((a, b) => b[1] - a[1] || a[0] - b[0])) {
      if (this.owners.has(p)) continue;
      const w = load.indexOf(Math.min(...load));
      this.owners.set(p, w);
      load[w] += size;
    }
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

  /** True once a worker has found a failure: the rest need not be read. */
  get failed(): boolean {
    return this.failedEarly;
  }

  addCheckpoint(value: unknown): void {
    const partition = (value as { partition?: unknown } | null)?.partition;
    // Not a partition number: malformed, any worker says so.
    const w = typeof partition === 'number' && Number.isInteger(partition) ? this.ownerOf(partition) : 0;
    this.checkpointsOf[w].push(value);
  }

  /** A record value as read from `partition` (raw bytes or text). False once a failure is known. */
  addRecord(partition: number, value: Uint8Array | string): boolean {
    const w = this.ownerOf(partition);
    // A string takes at most 3 bytes per UTF-16 unit.
    const most = typeof value === 'string' ? value.length * 3 : value.byteLength;
    if (!this.gathering[w].fits(most)) {
      this.handOver(w);
      if (!this.gathering[w].fits(most)) this.gathering[w] = new Gathering(most);
    }
    const g = this.gathering[w];
    g.add(partition, value);
    if (g.length >= this.batchBytes) this.handOver(w);
    return !this.failedEarly;
  }

  /** Hand what is gathered over, wait for every worker and merge their verdicts. */
  async finish(): Promise<VerificationResult> {
    if (this.finished) throw new Error('ParallelChainVerifier.finish() called twice');
    this.finished = true;
    try {
      for (let w = 0; w < this.workers.length; w++) {
        this.sendCheckpoints(w);
        this.handOver(w);
        this.workers[w].postMessage({ finish: true });
      }
      const replies = await Promise.all(this.replies);
      this.cpuMs = replies.map((r) => r.cpuMs);
      this.verifyCpuMs = replies.map((r) => r.verifyCpuMs);
      // Ids can repeat across workers only where their hashes do; the ids themselves are
      // asked for only then (a repeat, or a rare hash collision), not for every record.
      const ids = replies.length > 1 && hashesMeet(replies.map((r) => r.hashes)) ? await this.idsOfWorkers() : undefined;
      return merge(replies, ids);
    } finally {
      await this.close();
    }
  }

  /** Each worker's event ids by partition (after finish), one worker at a time. */
  private async idsOfWorkers(): Promise<string[]> {
    const out: string[] = [];
    for (const worker of this.workers) {
      const reply = new Promise<IdsReply>((resolve) => this.idReplies.push(resolve));
      worker.postMessage({ ids: true });
      out.push((await reply).ids);
    }
    return out;
  }

  /** Stop the workers (finish() does it; call it when giving up early). */
  async close(): Promise<void> {
    this.finished = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** The worker `plan()` placed a partition on, else round-robin in the order partitions are first seen. */
  private ownerOf(partition: number): number {
    let w = this.owners.get(partition);
    if (w === undefined) {
      w = this.owners.size % this.workers.length;
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
    this.gathering[w] = new Gathering(this.batchBytes * 2);
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

/** Whether any hash appears twice in these lists (equal ids always do; different ids almost never). */
function hashesMeet(lists: readonly Float64Array[]): boolean {
  const all = new Float64Array(lists.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const l of lists) {
    all.set(l, at);
    at += l.length;
  }
  // Sorted, equal hashes are neighbours: a native sort of numbers instead of a set of strings.
  all.sort();
  for (let i = 1; i < all.length; i++) if (all[i] === all[i - 1]) return true;
  return false;
}

/**
 * The workers' verdicts as one. `ids` (each worker's ids by partition, as JSON) only when
 * their id hashes met: otherwise no event id appears in two workers' partitions.
 */
function merge(replies: readonly WorkerReply[], ids?: readonly string[]): VerificationResult {
  const failures: VerificationFailure[] = [];
  const partitions: VerificationResult['partitions'] = {};
  const idsOf = new Map<number, string[]>();
  let records = 0;
  let checkpoints = 0;
  for (const { result } of replies) {
    records += result.records;
    checkpoints += result.checkpoints;
    Object.assign(partitions, result.partitions);
    if (result.failure) failures.push(result.failure);
  }
  for (const json of ids ?? []) for (const [p, list] of Object.entries(JSON.parse(json) as Record<string, string[]>)) idsOf.set(Number(p), list);
  // Uniqueness of event ids across partitions (each worker checked its own).
  if (ids) {
    const seen = new Set<string>();
    for (const p of [...idsOf.keys()].sort((a, b) => a - b)) {
      const ids = idsOf.get(p)!;
      for (let i = 0; i < ids.length; i++) {
        if (seen.has(ids[i])) {
          failures.push({ reason: 'duplicate_event', partition: p, seq: partitions[p].first + i, message: `event ${ids[i]} appears twice` });
          break;
        }
        seen.add(ids[i]);
      }
    }
  }
  failures.sort((a, b) => (a.partition ?? -1) - (b.partition ?? -1));
  const sorted: VerificationResult['partitions'] = {};
  for (const p of Object.keys(partitions).map(Number).sort((a, b) => a - b)) sorted[p] = partitions[p];
  const result: VerificationResult = { ok: failures.length === 0, records, checkpoints, partitions: sorted };
  if (failures[0]) result.failure = failures[0];
  return result;
}
