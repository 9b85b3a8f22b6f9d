import type { KeyObject } from 'node:crypto';
import {
  appendToChain,
  CHECKPOINT_EVERY_MS,
  CHECKPOINT_EVERY_RECORDS,
  emptyHead,
  signCheckpoint,
  type AuditRecord,
  type ChainHead,
  type RecordedEvent,
} from '@palisade/audit-log';
import { eventSubject, publisherOfEventSubject, type EventEnvelope, type ForgeryReport } from '@palisade/contracts';
import { partitionOf } from './audit-topic';

/**
 * Chaining one batch of events on top of the chain heads (pure: the caller brings the ids
 * already chained, the sealed events, the signing key and the time). The chain writer
 * (chain-writer.ts) runs these stages and commits what they produce.
 */

/** Where an event was consumed (JetStream), as a forgery report names it. */
export interface Delivery {
  subject: string;
  streamSequence: number;
  /** The durable that received it. */
  consumer: string;
}

/** An event waiting in the writer's queue, and how to tell its consumer it is committed. */
export interface Pending {
  event: EventEnvelope;
  /** Absent for events audit appends itself. */
  delivery?: Delivery;
  queuedAt: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export interface CheckpointState {
  /** Records since the last checkpoint. */
  count: number;
  /** When the first record not yet checkpointed was written (ms). */
  since: number | undefined;
}

/** A batch chained and signed, ready to be committed as one Kafka transaction. */
export interface Prepared {
  /** The events it holds (chained or repeats); what goes back to the queue if it fails. */
  batch: Pending[];
  fresh: Pending[];
  freshIds: Set<string>;
  duplicates: Pending[];
  written: Array<{ record: AuditRecord; value: string }>;
  checkpointValues: Array<{ key: string; value: string }>;
  /** The chain heads and checkpoint counts once it is committed. */
  heads: Map<number, ChainHead>;
  counts: Map<number, CheckpointState>;
}

/** What a batch is chained on top of: the committed chain, or the batch in flight. */
export type ChainBase = Pick<Prepared, 'heads' | 'counts' | 'freshIds'>;

/**
 * Bytes of one partition's records in one transaction, below Kafka's default 1 MB
 * `message.max.bytes`, which applies to each partition's record batch: the rest of a
 * batch waits for the next transaction instead of the whole batch being refused.
 */
export const MAX_PARTITION_BYTES = 900_000;
/** Per-record overhead in a Kafka record batch (headers, varints), rounded up. */
const RECORD_OVERHEAD_BYTES = 64;

/** Partitions whose oldest record not yet checkpointed waited long enough for a checkpoint. */
export function dueCheckpoints(nowMs: number, counts: ReadonlyMap<number, CheckpointState>): number[] {
  const due: number[] = [];
  for (const [partition, cp] of counts) {
    if (cp.since !== undefined && nowMs - cp.since >= CHECKPOINT_EVERY_MS) due.push(partition);
  }
  return due;
}

/**
 * Exactly once by event id: split a batch into the events to chain and the repeats of ids
 * the topic (`known`, `unindexed`), the batch in flight (`inFlight`) or the batch itself
 * already holds.
 */
export function splitRepeats(batch: readonly Pending[], known: ReadonlySet<string>, unindexed: ReadonlySet<string>, inFlight: ReadonlySet<string>): { fresh: Pending[]; duplicates: Pending[]; seen: Set<string> } {
  const seen = new Set<string>();
  const fresh: Pending[] = [];
  const duplicates: Pending[] = [];
  for (const p of batch) {
    const id = p.event.id;
    if (known.has(id) || unindexed.has(id) || inFlight.has(id) || seen.has(id)) duplicates.push(p);
    else {
      seen.add(id);
      fresh.push(p);
    }
  }
  return { fresh, duplicates, seen };
}

/**
 * The forgery report of an event whose producer-sealed `personal` failed its check: where
 * it came from and what it claimed, never its content (it may carry personal data).
 */
export function sealRefusalReport(event: EventEnvelope, delivery: Delivery | undefined, problems: readonly string[]): ForgeryReport {
  const subject = delivery?.subject ?? eventSubject(event.type);
  return {
    subject,
    publisher: publisherOfEventSubject(subject),
    claimedSource: event.source,
    claimedType: event.type,
    eventId: event.id,
    tenantId: event.tenantId,
    consumer: delivery?.consumer ?? '',
    streamSequence: delivery?.streamSequence ?? 0,
    problems: [...problems],
  };
}

export interface ChainInput {
  topic: string;
  partitions: number;
  batch: Pending[];
  fresh: Pending[];
  duplicates: Pending[];
  seen: Set<string>;
  /** `fresh`'s events with their personal data sealed, in the same order. */
  events: readonly RecordedEvent[];
  signer: { kid: string; privateKey: KeyObject };
  recordedAt: string;
  nowMs: number;
  duePartitions: readonly number[];
  base: ChainBase;
}

/**
 * Hash the fresh events into their partitions' chains on top of `base` and sign the
 * checkpoints that fall due (every CHECKPOINT_EVERY_RECORDS records, or `duePartitions`).
 * What would not fit in one transaction (MAX_PARTITION_BYTES) is returned as `deferred`,
 * in order, with the repeats of its ids (acknowledged only once chained): the caller puts
 * it back at the front of its queue. `input`'s arrays are trimmed to what `prepared` holds.
 */
export function chainBatch(input: ChainInput): { prepared: Prepared; deferred: Pending[] } {
  const { topic, partitions, batch, fresh, duplicates, seen, events, signer, recordedAt, nowMs, base } = input;
  const heads = new Map(base.heads);
  const counts = new Map<number, CheckpointState>([...base.counts].map(([p, c]) => [p, { ...c }]));
  const written: Array<{ record: AuditRecord; value: string }> = [];
  const checkpointValues: Array<{ key: string; value: string }> = [];
  const checkpoint = (head: ChainHead) => {
    const cp = signCheckpoint({ v: 1, partition: head.partition, seq: head.seq, hash: head.hash, at: recordedAt, keyId: signer.kid }, signer.privateKey);
    checkpointValues.push({ key: String(head.partition), value: JSON.stringify(cp) });
    counts.set(head.partition, { count: 0, since: undefined });
  };
  const partitionBytes = new Map<number, number>();
  let chained = events.length;
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    const partition = partitionOf(topic, event.tenantId, partitions);
    const next = appendToChain(heads.get(partition) ?? emptyHead(partition), event, recordedAt);
    const { value } = next;
    const bytes = (partitionBytes.get(partition) ?? 0) + Buffer.byteLength(value) + Buffer.byteLength(event.tenantId) + RECORD_OVERHEAD_BYTES;
    if (bytes > MAX_PARTITION_BYTES && partitionBytes.has(partition)) {
      chained = i;
      break;
    }
    partitionBytes.set(partition, bytes);
    heads.set(partition, next.head);
    written.push({ record: next.record, value });
    const state = counts.get(partition) ?? { count: 0, since: undefined };
    state.count++;
    state.since ??= nowMs;
    counts.set(partition, state);
    if (state.count >= CHECKPOINT_EVERY_RECORDS) checkpoint(next.head);
  }
  for (const partition of input.duePartitions) {
    const state = counts.get(partition);
    if (state?.since !== undefined) checkpoint(heads.get(partition)!);
  }
  let deferred: Pending[] = [];
  if (chained < fresh.length) {
    // Too many bytes for one transaction: the events not chained go back to the front of
    // the queue, in order, with the repeats of their ids (acknowledged only once chained).
    const laterIds = new Set(fresh.slice(chained).map((p) => p.event.id));
    const kept = new Set([...fresh.slice(0, chained), ...duplicates.filter((p) => !laterIds.has(p.event.id))]);
    deferred = batch.filter((p) => !kept.has(p));
    for (const p of fresh.splice(chained)) seen.delete(p.event.id);
    duplicates.splice(0, duplicates.length, ...duplicates.filter((p) => kept.has(p)));
    // `batch` is what the caller puts back if this transaction fails: only what it holds.
    batch.splice(0, batch.length, ...batch.filter((p) => kept.has(p)));
  }
  return { prepared: { batch, fresh, freshIds: seen, duplicates, written, checkpointValues, heads, counts }, deferred };
}
