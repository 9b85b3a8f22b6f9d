import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { TeamEvent, TeamMembershipSource } from './teams.events';

export interface TeamState {
  exists: boolean;
  archived: boolean;
  name?: string;
  members: readonly string[];
}

export type TeamCommand =
  | Command<'CreateTeam', { teamId: string; name: string }>
  | Command<'RenameTeam', { teamId: string; name: string }>
  /** `activeAgents`: agents of the team not retired (read before deciding): a team with live agents is not archived. */
  | Command<'ArchiveTeam', { teamId: string; activeAgents: number }>
  /** `userActive`: the user exists in the tenant and is not disabled (read before deciding). */
  | Command<'AddTeamMember', { teamId: string; userId: string; userActive: boolean; source: TeamMembershipSource }>
  | Command<'RemoveTeamMember', { teamId: string; userId: string; source: TeamMembershipSource }>;

const notFound = () => new PalisadeError('not_found', 'team not found');

/** Teams of a tenant: created, renamed, archived (for good); members added and removed, each once. */
export const teamDecider: Decider<TeamState, TeamCommand, TeamEvent> = {
  initialState: () => ({ exists: false, archived: false, members: [] }),
  decide(command, state) {
    const d = command.data;
    if (command.type === 'CreateTeam') {
      if (state.exists) throw new PalisadeError('conflict', 'teamId: a team with this id exists', { field: 'teamId' });
      return [{ type: 'auth.team.created', data: { teamId: d.teamId, name: command.data.name } }];
    }
    if (!state.exists) throw notFound();
    switch (command.type) {
      case 'RenameTeam':
        if (state.archived) throw new PalisadeError('conflict', 'team is archived');
        if (state.name === command.data.name) return [];
        return [{ type: 'auth.team.renamed', data: { teamId: d.teamId, name: command.data.name } }];
      case 'ArchiveTeam':
        if (state.archived) return [];
        if (command.data.activeAgents > 0) throw new PalisadeError('conflict', `team has ${command.data.activeAgents} agent(s) not retired: retire them first`);
        return [{ type: 'auth.team.archived', data: { teamId: d.teamId } }];
      case 'AddTeamMember':
        if (state.archived) throw new PalisadeError('conflict', 'team is archived');
        if (!command.data.userActive) throw new PalisadeError('not_found', 'user not found');
        if (state.members.includes(command.data.userId)) return [];
        return [{ type: 'auth.team-member.added', data: { teamId: d.teamId, userId: command.data.userId, source: command.data.source } }];
      case 'RemoveTeamMember':
        if (!state.members.includes(command.data.userId)) return [];
        return [{ type: 'auth.team-member.removed', data: { teamId: d.teamId, userId: command.data.userId, source: command.data.source } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'auth.team.created':
        return { exists: true, archived: false, name: event.data.name, members: [] };
      case 'auth.team.renamed':
        return { ...state, name: event.data.name };
      case 'auth.team.archived':
        return { ...state, archived: true };
      case 'auth.team-member.added':
        return { ...state, members: [...state.members, event.data.userId] };
      case 'auth.team-member.removed':
        return { ...state, members: state.members.filter((m) => m !== event.data.userId) };
    }
  },
};
