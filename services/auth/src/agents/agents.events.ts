import type { DomainEvent } from '@palisade/eventsourcing';

export type AgentStatus = 'active' | 'suspended' | 'retired';
/** Why an agent stopped: a person decided, or its parent stopped (a subagent follows its parent). */
export type AgentStopCause = 'person' | 'parent';

/**
 * Stream `agent-<tenant>.<agentId>`: the registry entry of an agent (a principal of type
 * `agent` that acts for its owning user, in one team), and every access token it was
 * issued (never the token: its id, key, scopes, audience and expiry). Its keys are API
 * keys owned by the agent (`auth.api-key.*`, owner `{ type: 'agent' }`).
 */
export type AgentEvent =
  | DomainEvent<'auth.agent.registered', { agentId: string; name: string; ownerId: string; teamId: string; parentAgentId?: string }>
  /**
   * `revokedThroughMs`: set when a token was issued at a later instant than this decision's
   * (a suspension retried after a concurrent exchange): the revocation reaches it too.
   */
  | DomainEvent<'auth.agent.suspended', { agentId: string; cause: AgentStopCause; revokedThroughMs?: number }>
  | DomainEvent<'auth.agent.resumed', { agentId: string }>
  | DomainEvent<'auth.agent.retired', { agentId: string; cause: AgentStopCause; revokedThroughMs?: number }>
  | DomainEvent<'auth.agent-token.issued', { agentId: string; keyId: string; actingFor: string; teamId: string; scopes: string[]; audience: string[]; jti: string; issuedAtMs: number; expiresAt: string }>;

/**
 * Stream `agent-guide-<tenant>.<agentId>`: the tenant's written operating rules for the
 * agent changed. The text itself is kept in `agent_guides` (written in the same
 * transaction), not in the event: it is free text the audit chain cannot erase; the event
 * proves which text (SHA-256) and how long, and who changed it (the actor).
 */
export type AgentGuideEvent = DomainEvent<'auth.agent-guide.changed', { agentId: string; sha256: string; bytes: number }>;
