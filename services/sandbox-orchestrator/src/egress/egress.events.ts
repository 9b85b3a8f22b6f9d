import type { DomainEvent } from '@palisade/eventsourcing';
import type { EgressDecision } from './egress.audit';

/**
 * The proxy's decisions (stream `egress-<sandboxId>`, appended in any order: each batch
 * stands alone), one event per sandbox per second at most: allowed, denied with the rule,
 * injected with the secret id. Never a secret value, a body, a header value or a query.
 */
export type EgressEvent = DomainEvent<'sandbox-orchestrator.egress.decisions_recorded', { sandboxId: string; sessionId: string; decisions: EgressDecision[]; dropped: number }>;

export const EGRESS_EVENT_TYPES: readonly EgressEvent['type'][] = ['sandbox-orchestrator.egress.decisions_recorded'];
