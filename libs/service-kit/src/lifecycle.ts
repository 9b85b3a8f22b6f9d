import type { DomainEvent } from '@palisade/eventsourcing';
import type { ServiceName } from '@palisade/contracts';

/**
 * `<service>.lifecycle.started`: a service instance has connected to its dependencies
 * and serves. Each start is its own stream, `lifecycle-<instance id>`.
 */
export function lifecycleStarted(
  service: ServiceName,
  instance: { instanceId: string; version: string; host: string },
): DomainEvent {
  return { type: `${service}.lifecycle.started`, data: { ...instance } };
}
