import { main, packageVersion } from '@palisade/service-kit';
import { auditMigrations } from './audit.migration';
import { AuditModule } from './audit.module';
import { auditReadiness } from './ingest/ingest.service';

main({
  name: 'audit',
  version: packageVersion(__dirname),
  description: 'Every event of every service in a write-once, hash-chained, signed Kafka log: verify, query, export, SIEM feeds.',
  module: AuditModule,
  migrations: auditMigrations,
  readiness: { kafka: auditReadiness.kafka, writer: auditReadiness.writer },
});
