import { Module } from '@nestjs/common';

/**
 * The sandbox-orchestrator service's own module. Its domain (deciders, handlers, projections,
 * controllers) lands here; health, metrics, docs, the event store, the outbox and
 * NATS come from @palisade/service-kit.
 */
@Module({})
export class SandboxOrchestratorModule {}
