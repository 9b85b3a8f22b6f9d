import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal } from '@palisade/service-kit';
import { READ_ALL_TENANTS, requirePlatformScope } from '../query/access';
import { parse } from '../validation';
import { verifyRangeQuerySchema } from './verify.dto';
import { VerifyService, type RangeVerification } from './verify.service';

/**
 * On-line verification of one partition's chain, or a range of it (verify.service.ts).
 * A partition holds several tenants' records, so this is a platform auditor's tool
 * (scope audit:read:all).
 */
@ApiTags('audit verification')
@Controller('v1/audit/verify')
export class VerifyController {
  constructor(private readonly verification: VerifyService) {}

  @Get()
  @ApiOperation({ summary: 'Verify a partition (or seq range fromSeq..toSeq) of the audit topic: hashes, links, seq, duplicates, signed checkpoints. Scope audit:read:all.' })
  @ApiQuery({ name: 'partition', required: true, type: Number })
  @ApiQuery({ name: 'fromSeq', required: false, type: Number })
  @ApiQuery({ name: 'toSeq', required: false, type: Number })
  @ApiOkResponse({ description: '{ok, status: ok|unverified|failed, records, checkpoints, checkpointsVerified, partitions, failure?: {reason, partition, seq, message}}; ok=false is still a 200: the check ran' })
  verify(@CurrentPrincipal() principal: Principal, @Query() query: unknown): Promise<RangeVerification> {
    requirePlatformScope(principal, READ_ALL_TENANTS);
    return this.verification.verifyRange(parse(verifyRangeQuerySchema, query, 'query'));
  }
}
