import { main, packageVersion } from '@palisade/service-kit';
import { AuditModule } from './audit.module';

main({
  name: 'audit',
  version: packageVersion(__dirname),
  description: 'Every event of every service in a write-once, hash-chained, signed Kafka log: verify, query, export, SIEM feeds.',
  module: AuditModule,
});
