import { Module } from '@nestjs/common';
import { AuditEvents } from './audit.events';
import { AuditRuntime } from './ingest/audit-runtime';
import { KeysController } from './keys/keys.controller';
import { VerifyController } from './verify/verify.controller';
import { QueryController } from './query/query.controller';
import { SubjectsController } from './subjects/subjects.controller';
import { IndexController } from './ingest/index.controller';
import { FeedsController } from './feeds/feeds.controller';
import { FeedRuntime } from './feeds/feed-runtime';

/**
 * The audit service: every platform event into the hash-chained Kafka topic
 * (ingest/), signed checkpoints and their keys (keys/), per-subject encryption of
 * personal data and erasure (subjects/), verification, query and export (query/),
 * SIEM feeds (feeds/).
 */
@Module({
  controllers: [KeysController, VerifyController, QueryController, SubjectsController, IndexController, FeedsController],
  providers: [AuditRuntime, AuditEvents, FeedRuntime],
})
export class AuditModule {}
