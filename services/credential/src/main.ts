import { main, packageVersion } from '@palisade/service-kit';
import { CredentialModule } from './credential.module';
import { vaultMigration } from './vault.migration';

main({
  name: 'credential',
  version: packageVersion(__dirname),
  description: 'Secrets under envelope encryption (KMS / HSM / BYOK), opaque ids for agents, just-in-time leases, every read audited.',
  module: CredentialModule,
  // LeaseNotify1796306000000, which databases may have run, is now the event store's EventsNotifyAfterCommit (same trigger body)
  migrations: [vaultMigration],
});
