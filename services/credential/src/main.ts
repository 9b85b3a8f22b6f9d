import { main, packageVersion } from '@palisade/service-kit';
import { CredentialModule } from './credential.module';
import { leaseNotifyMigration, vaultMigration } from './vault.migration';

main({
  name: 'credential',
  version: packageVersion(__dirname),
  description: 'Secrets under envelope encryption (KMS / HSM / BYOK), opaque ids for agents, just-in-time leases, every read audited.',
  module: CredentialModule,
  migrations: [vaultMigration, leaseNotifyMigration],
});
