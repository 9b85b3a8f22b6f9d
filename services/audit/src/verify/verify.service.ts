import { keysOf, type VerificationResult } from '@palisade/audit-log';
import { PalisadeError } from '@palisade/contracts';
import type { Transactions } from '../audit.events';
import type { AuditKafka } from '../ingest/audit-kafka';
import type { TopicSettings } from '../ingest/audit-topic';
import type { RecordsRepository } from '../ingest/records.repository';
import type { SigningKeys } from '../keys/signing-keys';
import { rangeVerdict, type VerifyStatus } from './range-verdict';
import type { VerifyRangeQuery } from './verify.dto';
import { verifyTopic } from './verify-topic';

export interface RangeVerification extends VerificationResult {
  /** `ok` only when a verified checkpoint seals the records; `unverified`: they link, but no signature vouches for them. */
  status: VerifyStatus;
  /** Checkpoints whose signature verified and whose hash matched the record at their seq. */
  checkpointsVerified: number;
  partition: number;
  fromSeq: number | null;
  toSeq: number | null;
}

/**
 * On-line verification of one partition's chain, or a range of it, read from the topic
 * itself (not the index) against the published keys; the index only maps seqs to offsets
 * and remembers the record before a cut head.
 */
export class VerifyService {
  constructor(
    private readonly kafka: Pick<AuditKafka, 'client' | 'admin'>,
    private readonly transactions: Transactions,
    private readonly records: Pick<RecordsRepository, 'offsetOf' | 'recordAt'>,
    private readonly keys: Pick<SigningKeys, 'jwks'>,
    private readonly settings: Pick<TopicSettings, 'topic' | 'checkpointTopic' | 'retentionMs'>,
  ) {}

  async verifyRange(q: VerifyRangeQuery): Promise<RangeVerification> {
    const { client: kafka, admin } = this.kafka;
    const { settings } = this;
    const partitions = (await admin.fetchTopicOffsets(settings.topic)).length;
    if (q.partition >= partitions) throw new PalisadeError('not_found', `partition ${q.partition} does not exist (the topic has ${partitions})`);
    const offsetOf = (seq: number) => this.transactions.inTransaction((tx) => this.records.offsetOf(tx, settings.topic, q.partition, seq));
    const from = q.fromSeq === undefined ? undefined : await offsetOf(q.fromSeq);
    if (q.fromSeq !== undefined && from === undefined) throw new PalisadeError('not_found', `partition ${q.partition} has no record with seq ${q.fromSeq}`);
    const to = q.toSeq === undefined ? undefined : await offsetOf(q.toSeq);
    if (q.toSeq !== undefined && to === undefined) throw new PalisadeError('not_found', `partition ${q.partition} has no record with seq ${q.toSeq}`);
    let first: { seq: number; prev: string } | undefined;
    let inRange = 0;
    let rangeLast: { seq: number; hash: string } | undefined;
    const verified = await verifyTopic({
      kafka,
      admin,
      topic: settings.topic,
      checkpointTopic: settings.checkpointTopic,
      keys: keysOf(await this.keys.jwks()),
      partitions: [q.partition],
      groupPrefix: `palisade-audit-verify`,
      allowLaterStart: true,
      fromOffsets: from === undefined ? undefined : new Map([[q.partition, from]]),
      untilOffsets: to === undefined ? undefined : new Map([[q.partition, to + 1n]]),
      checkpointSeqs: { from: q.fromSeq ?? 1, to: q.toSeq ?? Number.MAX_SAFE_INTEGER },
      ...(q.toSeq !== undefined ? { extendToSeal: { toSeq: q.toSeq, offsetOf } } : {}),
      onRecord: (r) => {
        first ??= { seq: r.seq, prev: r.prev };
        if (q.toSeq === undefined || r.seq <= q.toSeq) {
          inRange++;
          rangeLast = { seq: r.seq, hash: r.hash };
        }
      },
    });
    // Read on to a sealing checkpoint: report the range asked for.
    const result: VerificationResult = q.toSeq === undefined || !verified.ok || !rangeLast ? verified : { ...verified, records: inRange, partitions: { [q.partition]: { first: verified.partitions[q.partition].first, last: rangeLast.seq, hash: rangeLast.hash } } };
    const before = first && first.seq > 1 && q.fromSeq === undefined ? await this.transactions.inTransaction((tx) => this.records.recordAt(tx, settings.topic, q.partition, first!.seq - 1)) : undefined;
    const verdict = rangeVerdict({ result, partition: q.partition, first, wholePartition: q.fromSeq === undefined, before, nowMs: Date.now(), retentionMs: settings.retentionMs });
    const range = { partition: q.partition, fromSeq: q.fromSeq ?? null, toSeq: q.toSeq ?? null };
    if (verdict.ok && q.fromSeq !== undefined && result.partitions[q.partition]?.first !== q.fromSeq) {
      return { ...result, status: 'failed', checkpointsVerified: verdict.checkpointsVerified, ok: false, failure: { reason: 'gap', partition: q.partition, seq: q.fromSeq, message: `the range starts at seq ${result.partitions[q.partition]?.first ?? 'nothing'}, not ${q.fromSeq}` }, ...range };
    }
    const { failure, ...rest } = result;
    return { ...rest, ...verdict, ...(verdict.failure ?? failure ? { failure: verdict.failure ?? failure } : {}), ...range };
  }
}
