import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { keysOf, type VerificationResult } from '@palisade/audit-log';
import { PalisadeError, type Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { AuditRuntime } from '../ingest/audit-runtime';
import { READ_ALL_TENANTS, requirePlatformScope } from '../query/access';
import { parseInput } from '../validation';
import { verifyRangeQuerySchema } from './verify.dto';
import { verifyTopic } from './verify-topic';

export interface RangeVerification extends VerificationResult {
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
  @ApiOkResponse({ description: '{ok, records, checkpoints, partitions, failure?: {reason, partition, seq, message}}; ok=false is still a 200: the check ran' })
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
    const result = await verifyTopic({
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
    });
    if (result.ok && q.fromSeq !== undefined && result.partitions[q.partition]?.first !== q.fromSeq) {
      return { ...result, ok: false, failure: { reason: 'gap', partition: q.partition, seq: q.fromSeq, message: `the range starts at seq ${result.partitions[q.partition]?.first ?? 'nothing'}, not ${q.fromSeq}` }, partition: q.partition, fromSeq: q.fromSeq ?? null, toSeq: q.toSeq ?? null };
    }
    return { ...result, partition: q.partition, fromSeq: q.fromSeq ?? null, toSeq: q.toSeq ?? null };
  }
}
