import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { keysOf, type VerificationResult } from '@palisade/audit-log';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { AuditRuntime } from '../ingest/audit-runtime';
import { READ_ALL_TENANTS, requirePlatformScope } from '../query/access';
import { parseInput } from '../validation';
import { rangeVerdict, type VerifyStatus } from './range-verdict';
import { verifyRangeQuerySchema } from './verify.dto';
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
 * itself (not the index) against the published keys. A partition holds several
 * tenants' records, so this is a platform auditor's tool (scope audit:read:all).
 */
@ApiTags('audit verification')
@Controller('v1/audit/verify')
export class VerifyController {
  constructor(private readonly runtime: AuditRuntime) {}

  @Get()
  @ApiOperation({ summary: 'Verify a partition (or seq range fromSeq..toSeq) of the audit topic: hashes, links, seq, duplicates, signed checkpoints. Scope audit:read:all.' })
  @ApiQuery({ name: 'partition', required: true, type: Number })
  @ApiQuery({ name: 'fromSeq', required: false, type: Number })
  @ApiQuery({ name: 'toSeq', required: false, type: Number })
  @ApiOkResponse({ description: '{ok, status: ok|unverified|failed, records, checkpoints, checkpointsVerified, partitions, failure?: {reason, partition, seq, message}}; ok=false is still a 200: the check ran' })
  async verify(@CurrentPrincipal() principal: Principal, @Query() query: unknown): Promise<RangeVerification> {
    requirePlatformScope(principal, READ_ALL_TENANTS);
    const q = parseInput(verifyRangeQuerySchema, query, 'query');
    const { kafka, admin, settings, records } = this.runtime;
    const partitions = (await admin.fetchTopicOffsets(settings.topic)).length;
    if (q.partition >= partitions) throw new PalisadeError('not_found', `partition ${q.partition} does not exist (the topic has ${partitions})`);
    const db = this.runtime.db();
    const from = q.fromSeq === undefined ? undefined : await records.offsetOf(db, settings.topic, q.partition, q.fromSeq);
    if (q.fromSeq !== undefined && from === undefined) throw new PalisadeError('not_found', `partition ${q.partition} has no record with seq ${q.fromSeq}`);
    const to = q.toSeq === undefined ? undefined : await records.offsetOf(db, settings.topic, q.partition, q.toSeq);
    if (q.toSeq !== undefined && to === undefined) throw new PalisadeError('not_found', `partition ${q.partition} has no record with seq ${q.toSeq}`);
    let first: { seq: number; prev: string } | undefined;
    let inRange = 0;
    let rangeLast: { seq: number; hash: string } | undefined;
    const verified = await verifyTopic({
      kafka,
      admin,
      topic: settings.topic,
      checkpointTopic: settings.checkpointTopic,
      keys: keysOf(await this.runtime.keys.jwks()),
      partitions: [q.partition],
      groupPrefix: `palisade-audit-verify`,
      allowLaterStart: true,
      fromOffsets: from === undefined ? undefined : new Map([[q.partition, from]]),
      untilOffsets: to === undefined ? undefined : new Map([[q.partition, to + 1n]]),
      checkpointSeqs: { from: q.fromSeq ?? 1, to: q.toSeq ?? Number.MAX_SAFE_INTEGER },
      ...(q.toSeq !== undefined ? { extendToSeal: { toSeq: q.toSeq, offsetOf: (seq: number) => records.offsetOf(db, settings.topic, q.partition, seq) } } : {}),
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
    const before = first && first.seq > 1 && q.fromSeq === undefined ? await records.recordAt(db, settings.topic, q.partition, first.seq - 1) : undefined;
    const verdict = rangeVerdict({ result, partition: q.partition, first, wholePartition: q.fromSeq === undefined, before, nowMs: Date.now(), retentionMs: settings.retentionMs });
    const range = { partition: q.partition, fromSeq: q.fromSeq ?? null, toSeq: q.toSeq ?? null };
    if (verdict.ok && q.fromSeq !== undefined && result.partitions[q.partition]?.first !== q.fromSeq) {
      return { ...result, status: 'failed', checkpointsVerified: verdict.checkpointsVerified, ok: false, failure: { reason: 'gap', partition: q.partition, seq: q.fromSeq, message: `the range starts at seq ${result.partitions[q.partition]?.first ?? 'nothing'}, not ${q.fromSeq}` }, ...range };
    }
    const { failure, ...rest } = result;
    return { ...rest, ...verdict, ...(verdict.failure ?? failure ? { failure: verdict.failure ?? failure } : {}), ...range };
  }
}
