import { main, packageVersion } from '@palisade/service-kit';
import { PolicyModule } from './policy.module';

main({
  name: 'policy',
  version: packageVersion(__dirname),
  description: 'What you may do: RBAC + ABAC decisions per tenant for people and agents, approvals for critical actions.',
  module: PolicyModule,
});
