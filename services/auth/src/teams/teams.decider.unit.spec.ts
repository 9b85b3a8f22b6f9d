import { DeciderSpecification } from '@palisade/eventsourcing';
import { teamDecider } from './teams.decider';
import type { TeamEvent } from './teams.events';

const given = DeciderSpecification.for(teamDecider);
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'admin' }, now: new Date('2026-12-01T00:00:00.000Z') };
const created: TeamEvent = { type: 'auth.team.created', data: { teamId: 'platform', name: 'Platform' } };
const aliceJoined: TeamEvent = { type: 'auth.team-member.added', data: { teamId: 'platform', userId: 'alice', source: 'admin' } };

describe('team decider', () => {
  it('creates a team once', () => {
    given([]).when({ type: 'CreateTeam', data: { teamId: 'platform', name: 'Platform' }, metadata }).then([created]);
    given([created]).when({ type: 'CreateTeam', data: { teamId: 'platform', name: 'Other' }, metadata }).thenThrows('conflict', 'teamId');
  });

  it('renames, and a rename to the same name changes nothing; an unknown team is not found', () => {
    given([created]).when({ type: 'RenameTeam', data: { teamId: 'platform', name: 'Platform Eng' }, metadata }).then([{ type: 'auth.team.renamed', data: { teamId: 'platform', name: 'Platform Eng' } }]);
    given([created]).when({ type: 'RenameTeam', data: { teamId: 'platform', name: 'Platform' }, metadata }).then([]);
    given([]).when({ type: 'RenameTeam', data: { teamId: 'platform', name: 'X' }, metadata }).thenThrows('not_found');
  });

  it('archives a team without live agents, for good: no new members, no rename', () => {
    given([created]).when({ type: 'ArchiveTeam', data: { teamId: 'platform', activeAgents: 2 }, metadata }).thenThrows('conflict', 'agent');
    const archived: TeamEvent = { type: 'auth.team.archived', data: { teamId: 'platform' } };
    given([created]).when({ type: 'ArchiveTeam', data: { teamId: 'platform', activeAgents: 0 }, metadata }).then([archived]);
    given([created, archived]).when({ type: 'ArchiveTeam', data: { teamId: 'platform', activeAgents: 0 }, metadata }).then([]);
    given([created, archived]).when({ type: 'AddTeamMember', data: { teamId: 'platform', userId: 'bob', userActive: true, source: 'admin' }, metadata }).thenThrows('conflict', 'archived');
    given([created, archived]).when({ type: 'RenameTeam', data: { teamId: 'platform', name: 'New' }, metadata }).thenThrows('conflict', 'archived');
  });

  it('adds an active user of the tenant once, removes a member once', () => {
    given([created]).when({ type: 'AddTeamMember', data: { teamId: 'platform', userId: 'alice', userActive: true, source: 'admin' }, metadata }).then([aliceJoined]);
    given([created, aliceJoined]).when({ type: 'AddTeamMember', data: { teamId: 'platform', userId: 'alice', userActive: true, source: 'group-mapping' }, metadata }).then([]);
    given([created]).when({ type: 'AddTeamMember', data: { teamId: 'platform', userId: 'ghost', userActive: false, source: 'admin' }, metadata }).thenThrows('not_found', 'user');
    given([created, aliceJoined])
      .when({ type: 'RemoveTeamMember', data: { teamId: 'platform', userId: 'alice', source: 'admin' }, metadata })
      .then([{ type: 'auth.team-member.removed', data: { teamId: 'platform', userId: 'alice', source: 'admin' } }]);
    given([created]).when({ type: 'RemoveTeamMember', data: { teamId: 'platform', userId: 'alice', source: 'admin' }, metadata }).then([]);
  });
});
