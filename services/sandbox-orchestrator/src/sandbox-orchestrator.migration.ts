import type { MigrationFactory } from '@palisade/service-kit';
import { egressRulesMigration } from './egress/egress-rules.migration';
import { sandboxCpuGrantBootsMigration, sandboxCpuGrantsMigration, sandboxesMigration, sandboxQuotasMigration } from './sandboxes/sandboxes.migration';
import { tenantQuotasMigration } from './quotas/tenant-quotas.migration';
import { sessionsMigration } from './sessions/sessions.migration';

/** The service's migrations, one per context, in order (after the event store's). */
export const sandboxOrchestratorMigrations: readonly MigrationFactory[] = [sessionsMigration, sandboxesMigration, sandboxQuotasMigration, egressRulesMigration, tenantQuotasMigration, sandboxCpuGrantsMigration, sandboxCpuGrantBootsMigration];
