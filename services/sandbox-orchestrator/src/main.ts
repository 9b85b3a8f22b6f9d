import { main, packageVersion } from '@palisade/service-kit';
import { sandboxOrchestratorMigrations } from './sandbox-orchestrator.migration';
import { SandboxOrchestratorModule } from './sandbox-orchestrator.module';

main({
  name: 'sandbox-orchestrator',
  version: packageVersion(__dirname),
  description: 'Agent code in isolated sandboxes with quotas, timeouts, read-only root, default-deny network and a credential-injecting egress proxy.',
  module: SandboxOrchestratorModule,
  migrations: sandboxOrchestratorMigrations,
});
