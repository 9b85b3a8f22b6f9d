import type { KeyObject } from 'node:crypto';
import {
  checkpointSignatureValid,
  FORMAT_VERSION,
  hashOfCanonical,
  ZERO_HASH,
  type AuditRecord,
  type Checkpoint,
} from './format';
import { EventIdSet } from './id-set';
import { canonicalRecordBody, hasLoneSurrogate } from './jcs';
import { storedRecordView } from './record-bytes';

/**
 * Why a verification failed (audit-log-format.md, "What a verifier rejects"):
 * - `content_changed`: a record's `hash` does not match its content;
 * - `link_broken`: `prev` is not the previous record's `hash`;
 * - `gap`: a `seq` skips (or the first record of a complete chain is not seq 1);
 * - `out_of_order`: a `seq` repeats or goes back;
 * - `duplicate_event`: an `event.id` seen twice;
 * - `bad_signature`: a checkpoint's signature fails (or names a key that is not published);
 * - `checkpoint_mismatch`: a checkpoint's `hash` differs from the record at its `seq`;
 * - `truncated_tail`: a checkpoint's `seq` lies beyond the last record;
 * - `malformed`: not a record or checkpoint of format version 1.
 */
export type FailureReason =
  | 'content_changed'
  | 'link_broken'
  | 'gap'
  | 'out_of_order'
  | 'duplicate_event'
  | 'bad_signature'
  | 'checkpoint_mismatch'
  | 'truncated_tail'
  | 'malformed';

export interface VerificationFailure {
  reason: FailureReason;
  partition: number | null;
  seq: number | null;
  message: string;
}

export interface VerificationResult {
  ok: boolean;
  records: number;
  checkpoints: number;
  /** Per partition: first and last seq verified. */
  partitions: Record<number, { first: number; last: number; hash: string }>;
  failure?: VerificationFailure;
}

export interface ChainVerifierOptions {
  /** Public checkpoint keys by kid (GET /v1/audit/keys). */
  keys: ReadonlyMap<string, KeyObject>;
  /**
   * A partition may start after seq 1 (earlier records expired under the retention, or
   * a range was exported); its first record is then trusted as the anchor. Default
   * false: every chain must start at seq 1 with `prev` = 64 zeros.
   */
  allowLaterStart?: boolean;
  /** Called for each record that verified, in order (e.g. to collect its event id). */
  onRecord?: (partition: number, eventId: string) => void;
}

const HEX64 = /^[0-9a-f]{64}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface PartitionState {
  first: number;
  last: number;
  hash: string;
}

/**
 * Streaming verifier of one or more hash chains. Give it every checkpoint first
 * (`addCheckpoint`), then each partition's records in order (`addRecord`; partitions
 * may interleave), then `finish()`. It stops at the first failure and reports it with
 * the partition and seq. Memory: one hash per partition, the event ids seen (for the
 * duplicate check) and the checkpoints not yet matched.
 */
export class ChainVerifier {
  private readonly partitions = new Map<number, PartitionState>();
  private readonly eventIds = new EventIdSet();
  /** partition -> seq -> checkpoints awaiting their record. */
  private readonly pending = new Map<number, Map<number, Checkpoint[]>>();
  private records = 0;
  private checkpoints = 0;
  private failure: VerificationFailure | undefined;

  constructor(private readonly options: ChainVerifierOptions) {}

  get failed(): VerificationFailure | undefined {
    return this.failure;
  }

  addCheckpoint(value: unknown): boolean {
    if (this.failure) return false;
    const cp = value as Checkpoint;
    if (!isCheckpoint(cp)) return this.fail('malformed', numberOr(cp?.partition), numberOr(cp?.seq), 'not a version 1 checkpoint');
    const key = this.options.keys.get(cp.keyId);
    if (!key) return this.fail('bad_signature', cp.partition, cp.seq, `checkpoint signed with key "${cp.keyId}", which is not published`);
    if (!checkpointSignatureValid(cp, key)) return this.fail('bad_signature', cp.partition, cp.seq, 'checkpoint signature does not verify');
    const state = this.partitions.get(cp.partition);
    if (state && cp.seq <= state.last) {
      // Records already passed: only the head can still be compared.
      if (cp.seq === state.last && cp.hash !== state.hash) return this.fail('checkpoint_mismatch', cp.partition, cp.seq, 'checkpoint hash differs from the record at its seq');
      if (cp.seq !== state.last) return this.fail('malformed', cp.partition, cp.seq, 'checkpoints must be given before the records they seal');
      this.checkpoints++;
      return true;
    }
    let bySeq = this.pending.get(cp.partition);
    if (!bySeq) this.pending.set(cp.partition, (bySeq = new Map()));
    const list = bySeq.get(cp.seq);
    if (list) list.push(cp);
    else bySeq.set(cp.seq, [cp]);
    return true;
  }

  addRecord(value: unknown): boolean {
    if (this.failure) return false;
    const r = value as AuditRecord;
    if (!isRecord(r)) return this.fail('malformed', numberOr(r?.partition), numberOr(r?.seq), 'not a version 1 audit record');
    let body: string;
    try {
      body = canonicalRecordBody(r);
    } catch {
      // e.g. JSON.parse reads 1e999 as Infinity, which JCS cannot write (RFC 8785 takes I-JSON numbers only).
      return this.fail('malformed', r.partition, r.seq, 'the record has no canonical JSON form (a number out of range?)');
    }
    // RFC 8785 takes I-JSON only; the writer never chains a lone surrogate (format.ts).
    if (hasLoneSurrogate(body)) return this.fail('malformed', r.partition, r.seq, 'the record holds a lone surrogate, which I-JSON (RFC 8785) does not allow');
    const hash = hashOfCanonical(body);
    if (hash !== r.hash) return this.fail('content_changed', r.partition, r.seq, 'hash does not match the record content');
    return this.link(r.partition, r.seq, r.prev, r.hash, r.event.id);
  }

  /**
   * A record value as stored (UTF-8 bytes), read from `partition`: the verdict of
   * `addRecord(JSON.parse(bytes))` (a value that is not JSON is malformed). When the bytes
   * are the record's JCS form, as the audit service writes them, its hash is taken over
   * the bytes themselves, without parsing (record-bytes.ts); else the parsed value is verified.
   * The value may be the range [start, stop) of `bytes` (records batched in one buffer).
   */
  addRecordBytes(bytes: Uint8Array, partition: number | null = null, start = 0, stop = bytes.byteLength): boolean {
    if (this.failure) return false;
    const view = storedRecordView(bytes, start, stop);
    if (!view) return this.addRecord(parsed(start === 0 && stop === bytes.byteLength ? bytes : bytes.subarray(start, stop), partition));
    if (view.contentHash !== view.hash) return this.fail('content_changed', view.partition, view.seq, 'hash does not match the record content');
    return this.link(view.partition, view.seq, view.prev, view.hash, view.eventId);
  }

  /** The event ids of the records verified, in the order verified. */
  verifiedEventIds(): IterableIterator<string> {
    return this.eventIds.values();
  }

  /** The chain checks of a record whose hash matched: seq, link, event id, checkpoints. */
  private link(partition: number, seq: number, prev: string, hash: string, eventId: string): boolean {
    const state = this.partitions.get(partition);
    if (!state) {
      if (seq === 1 && prev !== ZERO_HASH) return this.fail('link_broken', partition, seq, 'the first record of a partition must have prev = 64 zeros');
      if (seq !== 1 && !this.options.allowLaterStart) return this.fail('gap', partition, seq, `partition starts at seq ${seq}, not 1 (records before it are missing)`);
    } else {
      if (seq <= state.last) return this.fail('out_of_order', partition, seq, `seq ${seq} after seq ${state.last} (repeats or goes back)`);
      if (seq !== state.last + 1) return this.fail('gap', partition, seq, `seq ${seq} after seq ${state.last}: ${seq - state.last - 1} record(s) missing`);
      if (prev !== state.hash) return this.fail('link_broken', partition, seq, 'prev is not the hash of the previous record');
    }
    if (!this.eventIds.add(eventId)) return this.fail('duplicate_event', partition, seq, `event ${eventId} appears twice`);
    if (state) {
      state.last = seq;
      state.hash = hash;
    } else {
      this.partitions.set(partition, { first: seq, last: seq, hash });
    }
    this.records++;
    this.options.onRecord?.(partition, eventId);
    const waiting = this.pending.get(partition)?.get(seq);
    if (waiting) {
      for (const cp of waiting) {
        if (cp.hash !== hash) return this.fail('checkpoint_mismatch', partition, seq, 'checkpoint hash differs from the record at its seq');
        this.checkpoints++;
      }
      this.pending.get(partition)!.delete(seq);
    }
    return true;
  }

  /** The result; checkpoints that sealed records never seen mean the tail was cut. */
  finish(): VerificationResult {
    if (!this.failure) {
      // Lowest partition first: a defined order, which the parallel verifier's shares agree on.
      for (const [partition, bySeq] of [...this.pending].sort((a, b) => a[0] - b[0])) {
        const state = this.partitions.get(partition);
        const seqs = [...bySeq.keys()].sort((a, b) => a - b);
        for (const seq of seqs) {
          if (!state || seq > state.last) {
            this.fail('truncated_tail', partition, seq, `a checkpoint seals seq ${seq} but the last record is ${state ? `seq ${state.last}` : 'missing'}`);
            break;
          }
          // Before the first record given (expired or outside the range): nothing to compare.
        }
        if (this.failure) break;
      }
    }
    const partitions: VerificationResult['partitions'] = {};
    for (const [p, s] of [...this.partitions].sort((a, b) => a[0] - b[0])) partitions[p] = { first: s.first, last: s.last, hash: s.hash };
    const result: VerificationResult = { ok: !this.failure, records: this.records, checkpoints: this.checkpoints, partitions };
    if (this.failure) result.failure = this.failure;
    return result;
  }

  private fail(reason: FailureReason, partition: number | null, seq: number | null, message: string): false {
    this.failure ??= { reason, partition, seq, message };
    return false;
  }
}

/** A stored value parsed; not JSON: a value no record check accepts, naming the partition it was read from. */
function parsed(bytes: Uint8Array, partition: number | null): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return { partition, unparsable: true };
  }
}

function numberOr(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

const isNat = (v: unknown, min: number) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

export function isRecord(r: AuditRecord): boolean {
  if (!r || typeof r !== 'object' || Array.isArray(r)) return false;
  const keys = Object.keys(r);
  if (keys.length !== 7) return false;
  return (
    r.v === FORMAT_VERSION &&
    isNat(r.partition, 0) &&
    isNat(r.seq, 1) &&
    typeof r.prev === 'string' &&
    HEX64.test(r.prev) &&
    typeof r.recordedAt === 'string' &&
    TIMESTAMP.test(r.recordedAt) &&
    typeof r.hash === 'string' &&
    HEX64.test(r.hash) &&
    !!r.event &&
    typeof r.event === 'object' &&
    typeof r.event.id === 'string'
  );
}

export function isCheckpoint(c: Checkpoint): boolean {
  if (!c || typeof c !== 'object' || Array.isArray(c)) return false;
  return (
    Object.keys(c).length === 7 &&
    c.v === FORMAT_VERSION &&
    isNat(c.partition, 0) &&
    isNat(c.seq, 1) &&
    typeof c.hash === 'string' &&
    HEX64.test(c.hash) &&
    typeof c.at === 'string' &&
    TIMESTAMP.test(c.at) &&
    typeof c.keyId === 'string' &&
    typeof c.sig === 'string'
  );
}

/** A line of an NDJSON export is a checkpoint when it has `sig`, else a record. */
export function isCheckpointLike(value: unknown): value is Checkpoint {
  return !!value && typeof value === 'object' && 'sig' in value;
}
