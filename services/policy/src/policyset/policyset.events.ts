import type { DomainEvent } from '@palisade/eventsourcing';
import type { Assignment, AttributeDefinition, Attributes, Rule } from '../model/policy.model';

/**
 * Events of a tenant's policy set (stream `policyset-<tenant>`: roles, assignments,
 * attribute definitions, subject attributes, tool allowlists, critical actions) and of
 * its policy documents (stream `policy-<tenant>.<policyId>`: versioned rule sets).
 * Every one is a permission change: the audit service records it.
 */
export type RoleDefined = DomainEvent<'policy.role.defined', { role: string; inherits: string[] }>;
export type RoleRemoved = DomainEvent<'policy.role.removed', { role: string }>;
export type AssignmentGranted = DomainEvent<'policy.assignment.granted', { assignments: Assignment[] }>;
export type AssignmentRevoked = DomainEvent<'policy.assignment.revoked', { assignments: Assignment[] }>;
export type AttributeDefined = DomainEvent<'policy.attribute.defined', { definition: AttributeDefinition }>;
export type SubjectAttributesSet = DomainEvent<'policy.subject-attributes.set', { subject: string; attributes: Attributes }>;
/** `agent` absent: the tenant's allowlist; present: that agent's. */
export type ToolAllowlistSet = DomainEvent<'policy.tool-allowlist.set', { agent?: string; tools: string[] }>;
export type CriticalActionsSet = DomainEvent<'policy.critical-actions.set', { actions: string[] }>;

export type PolicySetEvent =
  | RoleDefined
  | RoleRemoved
  | AssignmentGranted
  | AssignmentRevoked
  | AttributeDefined
  | SubjectAttributesSet
  | ToolAllowlistSet
  | CriticalActionsSet;

/** `version` is the policy document's version after the event (its stream version). */
export type PolicyPublished = DomainEvent<'policy.policy.published', { policyId: string; version: number; rules: Rule[] }>;
export type PolicyRolledBack = DomainEvent<'policy.policy.rolled-back', { policyId: string; version: number; toVersion: number; rules: Rule[] }>;
export type PolicyWithdrawn = DomainEvent<'policy.policy.withdrawn', { policyId: string; version: number }>;

export type PolicyDocumentEvent = PolicyPublished | PolicyRolledBack | PolicyWithdrawn;

/** Every event that changes what the engine decides. */
export type PermissionEvent = PolicySetEvent | PolicyDocumentEvent;

export const PERMISSION_EVENT_TYPES: readonly PermissionEvent['type'][] = [
  'policy.role.defined',
  'policy.role.removed',
  'policy.assignment.granted',
  'policy.assignment.revoked',
  'policy.attribute.defined',
  'policy.subject-attributes.set',
  'policy.tool-allowlist.set',
  'policy.critical-actions.set',
  'policy.policy.published',
  'policy.policy.rolled-back',
  'policy.policy.withdrawn',
];

export function isPermissionEvent(event: { type: string }): event is PermissionEvent {
  return (PERMISSION_EVENT_TYPES as readonly string[]).includes(event.type);
}
