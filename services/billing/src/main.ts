import { main, packageVersion } from '@palisade/service-kit';
import { BillingModule } from './billing.module';
import { billingMigrations } from './billing.migration';

main({
  name: 'billing',
  version: packageVersion(__dirname),
  description: 'Metering and spending limits per organisation, team and agent: a ledger that cannot overshoot (reserve → settle → release).',
  module: BillingModule,
  migrations: billingMigrations,
});
