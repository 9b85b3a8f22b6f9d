import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { AgentEvent, AgentGuideEvent, AgentStatus, AgentStopCause } from './agents.events';

export interface AgentState {
  exists: boolean;
  status?: AgentStatus;
  ownerId?: string;
  teamId?: string;
  parentAgentId?: string;
  /** The latest `iat_ms` of a token issued to the agent: a stop revokes through it at least. */
  lastIssuedAtMs?: number;
}

/** What registration needs to know from outside the stream, read before deciding. */
export interface RegistrationFacts {
  /** The team's status, or undefined when the tenant has no such team. */
  team?: 'active' | 'archived';
  /** The owner is an active user of the tenant and a member of the team. */
  ownerActive: boolean;
  ownerInTeam: boolean;
  /** The parent named, as the registry has it (undefined: no such agent in the tenant). */
  parent?: { status: AgentStatus; ownerId: string; teamId: string; parentAgentId?: string };
}

export type AgentCommand =
  | Command<'RegisterAgent', { agentId: string; name: string; ownerId: string; teamId: string; parentAgentId?: string; facts: RegistrationFacts }>
  | Command<'SuspendAgent', { agentId: string; cause: AgentStopCause }>
  | Command<'ResumeAgent', { agentId: string; parentStatus?: AgentStatus }>
  | Command<'RetireAgent', { agentId: string; cause: AgentStopCause }>
  | Command<
      'IssueAgentToken',
      { agentId: string; keyId: string; actingFor: string; scopes: string[]; audience: string[]; jti: string; issuedAtMs: number; expiresAt: string; parentStatus?: AgentStatus }
    >;

const notFound = () => new PalisadeError('not_found', 'agent not found');
/** The one-level rule: a subagent has a parent, and can never be one. */
export const ONE_LEVEL = 'a subagent cannot have subagents: agents are one level deep';

/**
 * The agent registry. Registration checks the team, the owner and the parent (one level
 * only, same owner and team); suspension and resumption move between active and
 * suspended; retirement is for good. A token is issued only to an active agent whose
 * parent, if any, is active too.
 */
export const agentDecider: Decider<AgentState, AgentCommand, AgentEvent> = {
  initialState: () => ({ exists: false }),
  decide(command, state) {
    if (command.type === 'RegisterAgent') {
      const { facts, ...d } = command.data;
      if (state.exists) throw new PalisadeError('conflict', 'agentId: an agent with this id exists');
      if (!facts.team) throw new PalisadeError('not_found', 'team not found');
      if (facts.team !== 'active') throw new PalisadeError('conflict', 'team is archived');
      if (!facts.ownerActive) throw new PalisadeError('not_found', 'owner not found');
      if (d.parentAgentId !== undefined) {
        const p = facts.parent;
        if (!p) throw notFound();
        if (p.parentAgentId !== undefined) throw new PalisadeError('forbidden', ONE_LEVEL);
        if (p.status !== 'active') throw new PalisadeError('conflict', `parent agent is ${p.status}`);
        if (p.ownerId !== d.ownerId) throw new PalisadeError('forbidden', 'a subagent has the owner of its parent');
        if (p.teamId !== d.teamId) throw new PalisadeError('validation', 'teamId: a subagent is in the team of its parent');
      } else if (!facts.ownerInTeam) {
        throw new PalisadeError('forbidden', 'teamId: the owner is not a member of this team');
      }
      return [{ type: 'auth.agent.registered', data: { agentId: d.agentId, name: d.name, ownerId: d.ownerId, teamId: d.teamId, ...(d.parentAgentId ? { parentAgentId: d.parentAgentId } : {}) } }];
    }
    if (!state.exists) throw notFound();
    switch (command.type) {
      case 'SuspendAgent':
        if (state.status !== 'active') return [];
        return [{ type: 'auth.agent.suspended', data: { ...command.data, ...through(state, command.metadata.now) } }];
      case 'ResumeAgent':
        if (state.status === 'retired') throw new PalisadeError('conflict', 'agent is retired');
        if (state.status === 'active') return [];
        if (command.data.parentStatus !== undefined && command.data.parentStatus !== 'active') throw new PalisadeError('conflict', `parent agent is ${command.data.parentStatus}`);
        return [{ type: 'auth.agent.resumed', data: { agentId: command.data.agentId } }];
      case 'RetireAgent':
        if (state.status === 'retired') return [];
        return [{ type: 'auth.agent.retired', data: { ...command.data, ...through(state, command.metadata.now) } }];
      case 'IssueAgentToken': {
        const { parentStatus, ...d } = command.data;
        if (state.status !== 'active') throw new PalisadeError('unauthenticated', `agent is ${state.status}`);
        if (state.parentAgentId !== undefined && parentStatus !== 'active') throw new PalisadeError('unauthenticated', 'parent agent is not active');
        if (d.actingFor !== state.ownerId) throw new PalisadeError('unauthenticated', 'the key does not act for the agent’s owner');
        return [{ type: 'auth.agent-token.issued', data: { ...d, teamId: state.teamId! } }];
      }
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'auth.agent.registered':
        return { exists: true, status: 'active', ownerId: event.data.ownerId, teamId: event.data.teamId, ...(event.data.parentAgentId ? { parentAgentId: event.data.parentAgentId } : {}) };
      case 'auth.agent.suspended':
        return { ...state, status: 'suspended' };
      case 'auth.agent.resumed':
        return { ...state, status: 'active' };
      case 'auth.agent.retired':
        return { ...state, status: 'retired' };
      case 'auth.agent-token.issued':
        return { ...state, lastIssuedAtMs: Math.max(state.lastIssuedAtMs ?? 0, event.data.issuedAtMs) };
    }
  },
};

/**
 * A stop decided at `now` revokes the tokens issued up to `now`; a token the stream shows
 * issued later (its exchange committed first, this decision was retried) is reached too.
 */
function through(state: AgentState, now: Date): { revokedThroughMs?: number } {
  return state.lastIssuedAtMs !== undefined && state.lastIssuedAtMs >= now.getTime() ? { revokedThroughMs: state.lastIssuedAtMs } : {};
}

/** Longest agent guide (UTF-8 bytes). */
export const MAX_GUIDE_BYTES = 16 * 1024;

export interface AgentGuideState {
  sha256?: string;
}

export type AgentGuideCommand = Command<'SetAgentGuide', { agentId: string; sha256: string; bytes: number; agentStatus?: AgentStatus }>;

/** The agent guide: replaced whole, by people only (the controller's rule); the same text again changes nothing. */
export const agentGuideDecider: Decider<AgentGuideState, AgentGuideCommand, AgentGuideEvent> = {
  initialState: () => ({}),
  decide(command, state) {
    const d = command.data;
    if (d.agentStatus === undefined) throw notFound();
    if (d.agentStatus === 'retired') throw new PalisadeError('conflict', 'agent is retired');
    if (d.bytes > MAX_GUIDE_BYTES) throw new PalisadeError('validation', `text: must be at most ${MAX_GUIDE_BYTES} bytes`);
    if (state.sha256 === d.sha256) return [];
    return [{ type: 'auth.agent-guide.changed', data: { agentId: d.agentId, sha256: d.sha256, bytes: d.bytes } }];
  },
  evolve: (_state, event) => ({ sha256: event.data.sha256 }),
};
