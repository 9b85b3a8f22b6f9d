import type { DomainEvent } from '@palisade/eventsourcing';
import type { EgressRule } from './egress.rules';

/**
 * A tenant's egress rule sets (stream `egress_rules-<tenant>.<scope>`): the rules of one
 * scope, replaced whole, or removed. `scope` is `tenant`, `agent:<id>` or
 * `session:<id>`. Rules name secrets by id (the vault's), never a value.
 */
export type EgressRulesEvent =
  | DomainEvent<'sandbox-orchestrator.egress_rules.set', { scope: string; rules: EgressRule[] }>
  | DomainEvent<'sandbox-orchestrator.egress_rules.removed', { scope: string }>;

export const EGRESS_RULES_EVENT_TYPES: readonly EgressRulesEvent['type'][] = ['sandbox-orchestrator.egress_rules.set', 'sandbox-orchestrator.egress_rules.removed'];
