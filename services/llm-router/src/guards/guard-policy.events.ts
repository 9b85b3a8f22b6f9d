import type { DomainEvent } from '@palisade/eventsourcing';
import type { Classification, ClassificationRule } from '../completions/routing';
import type { EntityType } from './pii.detector';

/** What happens to an entity found in a request: masked (reversibly), the request refused, or sent as it is. */
export type PiiAction = 'mask' | 'block' | 'allow';
export const PII_ACTIONS: readonly PiiAction[] = ['mask', 'block', 'allow'];

/** What a prompt-injection finding does: recorded in the audit event only, or (high confidence) the request refused. */
export type InjectionAction = 'flag' | 'block';
export const INJECTION_ACTIONS: readonly InjectionAction[] = ['flag', 'block'];

/** What a tool call the agent may not make does to a response: the call removed, or the response refused. */
export type ToolCallAction = 'remove' | 'refuse';
export const TOOL_CALL_ACTIONS: readonly ToolCallAction[] = ['remove', 'refuse'];

/**
 * A tenant's guard policy (stream `llm-guards-<tenant>`). `pii` is per declared
 * classification (the class the caller states, before the detector raises it) and entity
 * type; anything not named is masked. Routing still uses the raised class, so an entity
 * sent unmasked (`allow`) still only reaches the providers that class permits.
 */
export type GuardPolicy = {
  pii: Partial<Record<Classification, Partial<Record<EntityType, PiiAction>>>>;
  injection: InjectionAction;
  toolCalls: ToolCallAction;
  /**
   * Output review: answers calling one of these tools are held until a person approves
   * their release through the policy service (guards/held-answers.service.ts); absent:
   * nothing is held. (The policy service's critical actions are action names, not tools:
   * it knows no "critical tool", so the tenant names the tools here.)
   */
  review?: { tools: string[] };
  /**
   * Tenant rules raising the class of the requests they match, per team, agent and model
   * (`routing.ts`, `raisedByRules`; a model rule matches the model or route named and each
   * candidate tried for it): applied to the declared class before the PII policy is looked
   * up (the strictest of the classes the candidates may give) and before the detector
   * raises it further; never lowering it. Absent: none.
   */
  classificationRules?: ClassificationRule[];
};

/** Until a tenant configures one: mask everything, flag injections, remove calls to tools not allowed. */
export const DEFAULT_GUARD_POLICY: GuardPolicy = { pii: {}, injection: 'flag', toolCalls: 'remove' };

export function piiActionOf(policy: GuardPolicy, classification: Classification, type: EntityType): PiiAction {
  return policy.pii[classification]?.[type] ?? 'mask';
}

const STRICTNESS: Record<PiiAction, number> = { allow: 0, mask: 1, block: 2 };

/** The strictest action of the policies of these classes (a request that may be sent at any of them honours each). */
export function strictestPiiAction(policy: GuardPolicy, classes: readonly Classification[], type: EntityType): PiiAction {
  return classes.map((c) => piiActionOf(policy, c, type)).reduce<PiiAction>((a, b) => (STRICTNESS[b] > STRICTNESS[a] ? b : a), 'allow');
}

export type GuardPolicyEvent = DomainEvent<'llm-router.guard-policy.configured', GuardPolicy>;
export const GUARD_POLICY_EVENT_TYPES: readonly GuardPolicyEvent['type'][] = ['llm-router.guard-policy.configured'];
