import type { DomainEvent } from '@palisade/eventsourcing';

/** What a person a session is shared with may do there (the owner may do everything). */
export type ShareRole = 'collaborator' | 'viewer';
export const SHARE_ROLES: readonly ShareRole[] = ['collaborator', 'viewer'];

/**
 * An agent work session (stream `session-<id>`, events of one tenant only): who owns it,
 * whom it is shared with and which agents work in it. Users and agents are named by id
 * only (pseudonymous), so no event carries personal data.
 */
export type SessionEvent =
  | DomainEvent<'sandbox-orchestrator.session.created', { sessionId: string; owner: string }>
  | DomainEvent<'sandbox-orchestrator.session.shared', { sessionId: string; userId: string; role: ShareRole }>
  | DomainEvent<'sandbox-orchestrator.session.unshared', { sessionId: string; userId: string }>
  | DomainEvent<'sandbox-orchestrator.session.agent_joined', { sessionId: string; agentId: string }>
  | DomainEvent<'sandbox-orchestrator.session.agent_left', { sessionId: string; agentId: string }>
  | DomainEvent<'sandbox-orchestrator.session.archived', { sessionId: string }>;

export type SessionEventType = SessionEvent['type'];

export const SESSION_EVENT_TYPES: readonly SessionEventType[] = [
  'sandbox-orchestrator.session.created',
  'sandbox-orchestrator.session.shared',
  'sandbox-orchestrator.session.unshared',
  'sandbox-orchestrator.session.agent_joined',
  'sandbox-orchestrator.session.agent_left',
  'sandbox-orchestrator.session.archived',
];
