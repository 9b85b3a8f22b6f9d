import { Module } from '@nestjs/common';

/**
 * The credential service's own module. Its domain (deciders, handlers, projections,
 * controllers) lands here; health, metrics, docs, the event store, the outbox and
 * NATS come from @palisade/service-kit.
 */
@Module({})
export class CredentialModule {}
