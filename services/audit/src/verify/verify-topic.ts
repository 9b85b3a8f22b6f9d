import type { KeyObject } from 'node:crypto';
import { ChainVerifier, type AuditRecord, type VerificationResult } from '@palisade/audit-log';
import type { Admin, Kafka } from '@palisade/kafka';
import { endOffsets, readRange } from '../ingest/audit-topic';

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
  const topicEnds = await endOffsets(o.admin, o.topic);
  const ends = new Map([...topicEnds].filter(([p]) => wanted(p)).map(([p, end]) => [p, untilOffsets?.get(p) ?? end]));
  const lows = new Map((await o.admin.fetchTopicOffsets(o.topic)).map((p) => [p.partition, BigInt(p.low)]));
  const starts = new Map([...lows].map(([p, low]) => [p, o.fromOffsets?.get(p) !== undefined && o.fromOffsets.get(p)! > low ? o.fromOffsets.get(p)! : low]));
  await readRange(o.kafka, o.topic, starts, ends, async (batch) => {
      for (const r of batch) {
        let value: unknown;
        try {
          value = JSON.parse(r.value);
        } catch {
          value = { partition: r.partition, unparsable: true };
        }
        if (!verifier.addRecord(value)) return false;
        o.onRecord?.(value as AuditRecord);
      }
    }, { groupPrefix: o.groupPrefix });
  return verifier.finish();
}
