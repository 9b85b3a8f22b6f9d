import type { VerificationFailure, VerificationResult } from '@palisade/audit-log';

/** `ok`: every record checked is sealed by a verified checkpoint; `unverified`: records link, but no checkpoint vouches for them; `failed`. */
export type VerifyStatus = 'ok' | 'unverified' | 'failed';

export interface VerdictInput {
  result: VerificationResult;
  partition: number;
  /** The first record read: its seq and prev (undefined: none read). */
  first: { seq: number; prev: string } | undefined;
  /** Whole partition asked (no fromSeq): a chain that starts after seq 1 must have lost its head to retention only. */
  wholePartition: boolean;
  /** What the index knows of the record just before the first one read (undefined: nothing). */
  before: { seq: number; hash: string; recordedAt: string } | undefined;
  nowMs: number;
  retentionMs: number;
}

export interface Verdict {
  status: VerifyStatus;
  ok: boolean;
  checkpointsVerified: number;
  failure?: VerificationFailure;
}

/**
 * The verdict on a partition or range (pure): the chain checks of the verifier, plus
 * - a cut head: records before the first one still in the topic were removed although
 *   retention keeps them (the index recorded the previous one less than the retention
 *   ago), or the first record does not link to the one the index recorded before it;
 * - records that no verified checkpoint seals are "unverified", not "ok".
 */
export function rangeVerdict(input: VerdictInput): Verdict {
  const { result, partition, first, before } = input;
  const checkpointsVerified = result.checkpoints;
  if (!result.ok) return { status: 'failed', ok: false, checkpointsVerified, ...(result.failure ? { failure: result.failure } : {}) };
  if (input.wholePartition && first && first.seq > 1 && before && before.seq === first.seq - 1) {
    const removedAt = Date.parse(before.recordedAt);
    if (before.hash !== first.prev) {
      return { status: 'failed', ok: false, checkpointsVerified, failure: { reason: 'link_broken', partition, seq: first.seq, message: `the first record left (seq ${first.seq}) does not link to the seq ${before.seq} the index recorded: the head was replaced` } };
    }
    if (removedAt > input.nowMs - input.retentionMs) {
      return {
        status: 'failed',
        ok: false,
        checkpointsVerified,
        failure: { reason: 'gap', partition, seq: first.seq, message: `the head was cut: the partition starts at seq ${first.seq}, but seq ${before.seq} was recorded ${before.recordedAt}, within the retention` },
      };
    }
  }
  if (result.records > 0 && checkpointsVerified === 0) return { status: 'unverified', ok: false, checkpointsVerified };
  return { status: 'ok', ok: true, checkpointsVerified };
}
