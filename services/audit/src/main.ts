import { main, packageVersion } from '@palisade/service-kit';
import { AuditModule } from './audit.module';
import { auditReadiness } from './ingest/audit-runtime';
import { indexQuarantineMigration } from './ingest/index-quarantine.migration';
import { indexRebuildMigration } from './ingest/index-rebuild.migration';
import { ingestMigration } from './ingest/ingest.migration';
import { feedsMigration } from './feeds/feeds.migration';
import { feedsClientKeyMigration } from './feeds/feeds-client-key.migration';

main({
  name: 'audit',
  version: packageVersion(__dirname),
  description: 'Every event of every service in a write-once, hash-chained, signed Kafka log: verify, query, export, SIEM feeds.',
  module: AuditModule,
  migrations: [ingestMigration, indexRebuildMigration, feedsMigration, feedsClientKeyMigration, indexQuarantineMigration],
  readiness: { kafka: auditReadiness.kafka, writer: auditReadiness.writer },
});
