import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Jwks } from './format';
import type { VerificationFailure, VerificationResult } from './verifier';

export interface ParallelVerifyInput {
  /** Each partition's record values (the raw JSON, as read from the topic), in offset order. */
  partitions: ReadonlyMap<number, readonly string[]>;
  /** Every checkpoint (parsed), any order. */
  checkpoints: readonly unknown[];
  jwks: Jwks;
  allowLaterStart?: boolean;
  /** Worker threads (default: the machine's parallelism, at most the partition count). */
  threads?: number;
}

interface WorkerReply {
  result: VerificationResult;
  /** Per partition: the event ids in seq order, from `result.partitions[p].first`. */
  ids: Record<number, string[]>;
}

/**
 * The worker's code. It loads this package's build (dist/), so the package must be
 * built (`tsc -b libs/audit-log`) — the service, the CLI and the benchmark run from it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const lib = require(workerData.module);
const verifier = new lib.ChainVerifier({ keys: lib.keysOf(workerData.jwks), allowLaterStart: workerData.allowLaterStart });
const ids = {};
let ok = true;
for (const cp of workerData.checkpoints) if (!(ok = verifier.addCheckpoint(cp))) break;
outer: for (const [partition, text] of ok ? workerData.partitions : []) {
  const list = (ids[partition] = []);
  for (const value of text.length === 0 ? [] : text.split('\\n')) {
    let record;
    try { record = JSON.parse(value); } catch { record = { partition, unparsable: true }; }
    if (!verifier.addRecord(record)) break outer;
    list.push(record.event.id);
  }
}
parentPort.postMessage({ result: verifier.finish(), ids });
`;

/**
 * Verify several partitions at once, one worker thread per group of partitions: each
 * runs a ChainVerifier over its partitions (hash, links, seq, checkpoints), and the
 * event-id uniqueness across partitions is checked here. Same verdicts as a single
 * ChainVerifier over the same records; when several partitions fail, the failure of
 * the lowest partition is reported.
 */
export async function verifyPartitionsInParallel(input: ParallelVerifyInput): Promise<VerificationResult> {
  const partitions = [...input.partitions.keys()].sort((a, b) => a - b);
  const threads = Math.max(1, Math.min(input.threads ?? availableParallelism(), partitions.length));
  const groups: number[][] = Array.from({ length: threads }, () => []);
  // Largest partitions first, each to the least loaded group.
  const load = new Array<number>(threads).fill(0);
  for (const p of [...partitions].sort((a, b) => input.partitions.get(b)!.length - input.partitions.get(a)!.length)) {
    const g = load.indexOf(Math.min(...load));
    groups[g].push(p);
    load[g] += input.partitions.get(p)!.length;
  }
  const module = join(__dirname, '..', 'dist', 'index.js');
  const replies = await Promise.all(
    groups.map((group) => {
      const mine = new Set(group);
      const checkpoints = input.checkpoints.filter((cp) => mine.has((cp as { partition?: number })?.partition as number));
      return runWorker({
        module,
        jwks: input.jwks,
        allowLaterStart: input.allowLaterStart ?? false,
        checkpoints,
        // One string per partition: cloning a few large strings is far cheaper than many small ones.
        partitions: group.map((p) => [p, input.partitions.get(p)!.join('\n')]),
      });
    }),
  );
  // Checkpoints of partitions without records: a single verifier would call the tail cut.
  const orphan = input.checkpoints.find((cp) => !input.partitions.has((cp as { partition?: number })?.partition as number));
  return merge(replies, orphan as { partition?: number; seq?: number } | undefined);
}

function runWorker(workerData: unknown): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    worker.once('message', (reply: WorkerReply) => resolve(reply));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`verification worker exited with code ${code}`)));
  });
}

function merge(replies: readonly WorkerReply[], orphan: { partition?: number; seq?: number } | undefined): VerificationResult {
  const failures: VerificationFailure[] = [];
  const partitions: VerificationResult['partitions'] = {};
  let records = 0;
  let checkpoints = 0;
  for (const { result } of replies) {
    records += result.records;
    checkpoints += result.checkpoints;
    Object.assign(partitions, result.partitions);
    if (result.failure) failures.push(result.failure);
  }
  // Uniqueness of event ids across partitions (each worker checked its own).
  const seen = new Set<string>();
  for (const p of Object.keys(partitions).map(Number).sort((a, b) => a - b)) {
    const ids = replies.find((r) => r.ids[p])?.ids[p] ?? [];
    for (let i = 0; i < ids.length; i++) {
      if (seen.has(ids[i])) {
        failures.push({ reason: 'duplicate_event', partition: p, seq: partitions[p].first + i, message: `event ${ids[i]} appears twice` });
        break;
      }
      seen.add(ids[i]);
    }
  }
  if (orphan && typeof orphan.partition === 'number') {
    failures.push({ reason: 'truncated_tail', partition: orphan.partition, seq: orphan.seq ?? null, message: `a checkpoint seals seq ${orphan.seq} but the last record is missing` });
  }
  failures.sort((a, b) => (a.partition ?? -1) - (b.partition ?? -1));
  const sorted: VerificationResult['partitions'] = {};
  for (const p of Object.keys(partitions).map(Number).sort((a, b) => a - b)) sorted[p] = partitions[p];
  const result: VerificationResult = { ok: failures.length === 0, records, checkpoints, partitions: sorted };
  if (failures[0]) result.failure = failures[0];
  return result;
}
