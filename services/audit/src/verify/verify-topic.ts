import type { KeyObject } from 'node:crypto';
import { ChainVerifier, ParallelChainVerifier, type AuditRecord, type Jwks, type VerificationResult } from '@palisade/audit-log';
import type { Admin, Kafka } from '@palisade/kafka';
import { endOffsets, offsetBounds, readRange, readRangeRaw } from '../ingest/audit-topic';

export interface VerifyTopicOptions {
  kafka: Kafka;
  admin: Admin;
  topic: string;
  checkpointTopic: string;
  keys: ReadonlyMap<string, KeyObject>;
  /** Only these partitions (default: all). */
  partitions?: readonly number[];
  /** Consumer group prefix the reader may use (ACLs). */
  groupPrefix: string;
  /** Records retention deleted are not an error: the first record left anchors the chain. */
  allowLaterStart?: boolean;
  /** Called for every record read (e.g. to collect event ids). */
  onRecord?: (record: AuditRecord) => void;
  /** A range instead of everything: start offsets (inclusive) and end offsets (exclusive) per partition. */
  fromOffsets?: ReadonlyMap<number, bigint>;
  untilOffsets?: ReadonlyMap<number, bigint>;
  /** Only checkpoints sealing a seq in this range are checked (a range's later checkpoints would read as a cut tail). */
  checkpointSeqs?: { from: number; to: number };
  /**
   * A range ending at `toSeq` of the one partition asked is read on to the first
   * checkpoint at or after it (when there is one), so a signature vouches for the range
   * through the links; `offsetOf` maps that checkpoint's seq to its record's offset.
   */
  extendToSeal?: { toSeq: number; offsetOf: (seq: number) => Promise<bigint | undefined> };
}

/**
 * Verify the live topic: every checkpoint first (read_committed), then each partition's
 * records from the earliest offset still held to the end, against the contract.
 */
export async function verifyTopic(o: VerifyTopicOptions): Promise<VerificationResult> {
  const verifier = new ChainVerifier({ keys: o.keys, allowLaterStart: o.allowLaterStart ?? true });
  const wanted = (p: number) => !o.partitions || o.partitions.includes(p);
  const checkpointEnds = await endOffsets(o.admin, o.checkpointTopic);
  const checkpoints: unknown[] = [];
  await readRange(o.kafka, o.checkpointTopic, new Map(), checkpointEnds, async (batch) => {
    for (const r of batch) checkpoints.push(JSON.parse(r.value));
  }, { groupPrefix: o.groupPrefix });
  let checkpointSeqs = o.checkpointSeqs;
  let untilOffsets = o.untilOffsets;
  if (o.extendToSeal && o.partitions?.length === 1) {
    const p = o.partitions[0];
    const { toSeq, offsetOf } = o.extendToSeal;
    const seal = (checkpoints as Array<{ partition?: unknown; seq?: unknown }>)
      .filter((cp) => cp.partition === p && typeof cp.seq === 'number' && cp.seq >= toSeq)
      .map((cp) => cp.seq as number)
      .sort((a, b) => a - b)[0];
    const offset = seal === undefined ? undefined : await offsetOf(seal);
    if (seal !== undefined && offset !== undefined) {
      untilOffsets = new Map([[p, offset + 1n]]);
      checkpointSeqs = { from: checkpointSeqs?.from ?? 1, to: seal };
    }
  }
  const inRange = (cp: { seq?: unknown }) => !checkpointSeqs || (typeof cp.seq === 'number' && cp.seq >= checkpointSeqs.from && cp.seq <= checkpointSeqs.to);
  for (const cp of checkpoints) {
    if (wanted((cp as { partition: number }).partition) && inRange(cp as { seq?: unknown }) && !verifier.addCheckpoint(cp)) return verifier.finish();
  }
  const { lows, ends: topicEnds } = await offsetBounds(o.admin, o.topic);
  const ends = new Map([...topicEnds].filter(([p]) => wanted(p)).map(([p, end]) => [p, untilOffsets?.get(p) ?? end]));
  const starts = new Map([...lows].map(([p, low]) => [p, o.fromOffsets?.get(p) !== undefined && o.fromOffsets.get(p)! > low ? o.fromOffsets.get(p)! : low]));
  // The bytes as stored: a record in JCS form (as the service writes them) is hashed without parsing.
  await readRangeRaw(o.kafka, o.topic, starts, ends, async (batch) => {
    for (const r of batch) {
      if (!verifier.addRecordBytes(r.value, r.partition)) return false;
      o.onRecord?.(JSON.parse(r.value.toString('utf8')) as AuditRecord);
    }
  }, { groupPrefix: o.groupPrefix });
  return verifier.finish();
}

export interface VerifyTopicInParallelOptions extends Pick<VerifyTopicOptions, 'kafka' | 'admin' | 'topic' | 'checkpointTopic' | 'partitions' | 'groupPrefix' | 'allowLaterStart'> {
  /** The published keys (the workers build their own). */
  jwks: Jwks;
  /** Worker threads (default: the machine's parallelism). */
  threads?: number;
}

/** Fetch size per partition for the parallel reader: large batches, few round trips. */
const PARALLEL_FETCH_BYTES = 8 * 1024 * 1024;

/**
 * verifyTopic on worker threads (ParallelChainVerifier), whole partitions: the workers
 * start before anything is read; this thread only reads — the checkpoints, then the
 * records as raw bytes, the partitions spread over the workers by their offset ranges —
 * and hands the bytes over. It stops reading at the first failure a worker reports.
 */
export async function verifyTopicInParallel(o: VerifyTopicInParallelOptions): Promise<VerificationResult> {
  // This thread reads Kafka (as much CPU per record as verifying): it only hands records over.
  const verifier = new ParallelChainVerifier({ jwks: o.jwks, threads: o.threads, readerOnly: true, allowLaterStart: o.allowLaterStart ?? true });
  try {
    const wanted = (p: number) => !o.partitions || o.partitions.includes(p);
    await readRange(o.kafka, o.checkpointTopic, new Map(), await endOffsets(o.admin, o.checkpointTopic), async (batch) => {
      for (const r of batch) {
        const cp = JSON.parse(r.value) as { partition: number };
        if (wanted(cp.partition)) verifier.addCheckpoint(cp);
      }
    }, { groupPrefix: o.groupPrefix });
    const { lows: starts, ends: topicEnds } = await offsetBounds(o.admin, o.topic);
    const ends = new Map([...topicEnds].filter(([p]) => wanted(p)));
    verifier.plan(new Map([...ends].map(([p, end]) => [p, Number(end - (starts.get(p) ?? 0n))])));
    await readRangeRaw(o.kafka, o.topic, starts, ends, async (batch) => {
      for (const r of batch) if (!verifier.addRecord(r.partition, r.value)) return false;
    }, { groupPrefix: o.groupPrefix, maxBytesPerPartition: PARALLEL_FETCH_BYTES });
    return await verifier.finish();
  } finally {
    await verifier.close();
  }
}
