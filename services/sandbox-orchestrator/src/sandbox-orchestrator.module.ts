import { Module } from '@nestjs/common';
import { PalisadeError } from '@palisade/contracts';
import { policyClientOnceConnected, type PolicyClient } from '@palisade/policy-client';
import { PLATFORM, type Platform } from '@palisade/service-kit';
import { loadSandboxOrchestratorConfig, type SandboxOrchestratorConfig } from './sandbox-orchestrator.config';
import { POLICY_CLIENT, SANDBOX_CONFIG, SESSIONS_SERVICE, type Ready } from './sandbox-orchestrator.tokens';
import { SessionsController } from './sessions/sessions.controller';
import { SessionsRepository } from './sessions/sessions.repository';
import { SessionsService } from './sessions/sessions.service';

type PolicyPort = () => Pick<PolicyClient, 'authorize'> | undefined;

/** The sessions service, once the event store and the data source exist. */
function sessionsServiceFor(platform: Platform, policy: PolicyPort): Ready<SessionsService> {
  let service: SessionsService | undefined;
  platform.afterConnect(async (p) => {
    service ??= new SessionsService({ store: p.eventStore!, repo: new SessionsRepository(p.dataSource!), policy, eventContext: p.eventContext });
  });
  return () => {
    if (!service) throw new PalisadeError('unavailable', 'the service is starting');
    return service;
  };
}

/**
 * The sandbox-orchestrator service: agent work sessions (sandboxes and egress rules come
 * next). Health, metrics, docs, the event store, the outbox and NATS come from
 * @palisade/service-kit; who may do what is the policy service's decision.
 */
@Module({
  controllers: [SessionsController],
  providers: [
    { provide: SANDBOX_CONFIG, useFactory: () => loadSandboxOrchestratorConfig() },
    {
      provide: POLICY_CLIENT,
      useFactory: (platform: Platform, config: SandboxOrchestratorConfig): PolicyPort => policyClientOnceConnected(platform, 'sandbox-orchestrator', { timeoutMs: config.policyTimeoutMs }),
      inject: [PLATFORM, SANDBOX_CONFIG],
    },
    { provide: SESSIONS_SERVICE, useFactory: (platform: Platform, policy: PolicyPort) => sessionsServiceFor(platform, policy), inject: [PLATFORM, POLICY_CLIENT] },
  ],
})
export class SandboxOrchestratorModule {}
