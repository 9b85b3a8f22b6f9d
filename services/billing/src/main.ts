import { main, packageVersion } from '@palisade/service-kit';
import { BillingModule } from './billing.module';

main({
  name: 'billing',
  version: packageVersion(__dirname),
  description: 'Metering and spending limits per organisation, team and agent.',
  module: BillingModule,
});
