import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { SessionEvent, ShareRole } from './sessions.events';

/** Most people a session is shared with, and most agents working in it. */
export const MAX_MEMBERS = 100;

export interface SessionState {
  status: 'none' | 'active' | 'archived';
  sessionId?: string;
  owner?: string;
  /** user id → role */
  shares: Readonly<Record<string, ShareRole>>;
  agents: readonly string[];
}

/**
 * The session's own rules. Who may ask for what (owner, collaborator, viewer, an agent
 * and its user) is the policy service's decision, asked before; these are the rules of
 * the session's state, which hold whoever asks.
 */
export type SessionCommand =
  | Command<'create', { sessionId: string; owner: string }>
  | Command<'share', { userId: string; role: ShareRole }>
  | Command<'unshare', { userId: string }>
  | Command<'join', { agentId: string }>
  | Command<'leave', { agentId: string }>
  | Command<'archive', Record<string, never>>;

const notFound = () => new PalisadeError('not_found', 'session not found');

export const sessionDecider: Decider<SessionState, SessionCommand, SessionEvent> = {
  initialState: () => ({ status: 'none', shares: {}, agents: [] }),

  decide(command, state) {
    if (command.type === 'create') {
      if (state.status !== 'none') throw new PalisadeError('conflict', 'session already exists');
      return [{ type: 'sandbox-orchestrator.session.created', data: { sessionId: command.data.sessionId, owner: command.data.owner } }];
    }
    if (state.status === 'none') throw notFound();
    if (state.status === 'archived') throw new PalisadeError('illegal_state', 'session is archived');
    const sessionId = state.sessionId!;
    switch (command.type) {
      case 'share': {
        const { userId, role } = command.data;
        if (userId === state.owner) throw new PalisadeError('validation', 'userId: the owner already has every right in the session');
        if (state.shares[userId] === role) return [];
        if (!Object.hasOwn(state.shares, userId) && Object.keys(state.shares).length >= MAX_MEMBERS) throw new PalisadeError('validation', `userId: a session is shared with at most ${MAX_MEMBERS} people`);
        return [{ type: 'sandbox-orchestrator.session.shared', data: { sessionId, userId, role } }];
      }
      case 'unshare':
        if (!Object.hasOwn(state.shares, command.data.userId)) throw new PalisadeError('not_found', 'the session is not shared with this user');
        return [{ type: 'sandbox-orchestrator.session.unshared', data: { sessionId, userId: command.data.userId } }];
      case 'join':
        if (state.agents.includes(command.data.agentId)) return [];
        if (state.agents.length >= MAX_MEMBERS) throw new PalisadeError('validation', `agentId: at most ${MAX_MEMBERS} agents work in a session`);
        return [{ type: 'sandbox-orchestrator.session.agent_joined', data: { sessionId, agentId: command.data.agentId } }];
      case 'leave':
        if (!state.agents.includes(command.data.agentId)) throw new PalisadeError('not_found', 'the agent does not work in this session');
        return [{ type: 'sandbox-orchestrator.session.agent_left', data: { sessionId, agentId: command.data.agentId } }];
      case 'archive':
        return [{ type: 'sandbox-orchestrator.session.archived', data: { sessionId } }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'sandbox-orchestrator.session.created':
        return { status: 'active', sessionId: event.data.sessionId, owner: event.data.owner, shares: {}, agents: [] };
      case 'sandbox-orchestrator.session.shared':
        return { ...state, shares: { ...state.shares, [event.data.userId]: event.data.role } };
      case 'sandbox-orchestrator.session.unshared': {
        const { [event.data.userId]: _gone, ...shares } = state.shares;
        void _gone;
        return { ...state, shares };
      }
      case 'sandbox-orchestrator.session.agent_joined':
        return { ...state, agents: [...state.agents, event.data.agentId] };
      case 'sandbox-orchestrator.session.agent_left':
        return { ...state, agents: state.agents.filter((a) => a !== event.data.agentId) };
      case 'sandbox-orchestrator.session.archived':
        return { ...state, status: 'archived' };
    }
  },
};
