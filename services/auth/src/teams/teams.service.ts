import { PalisadeError, type Actor, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler, type Transaction } from '@palisade/eventsourcing';
import type { Transactions } from '../transactions';
import type { TeamCommand, TeamState } from './teams.decider';
import type { TeamEvent, TeamMembershipSource } from './teams.events';
import type { TeamsRepository } from './teams.repository';

const teamStream = (tenantId: string, teamId: string) => streamName('team', `${tenantId}.${teamId}`);

/** What the teams context reads from the agent registry: how many live agents a team has. */
export interface TeamAgents {
  activeAgentsOf(tx: Transaction, tenantId: string, teamId: string): Promise<number>;
}

/**
 * Teams (departments) of a tenant: create, rename, archive; members added and removed by
 * administrators or kept in step with directory / IdP groups (`groupTeams`). Removing a
 * member revokes the user's access tokens (not the session: the next refresh carries the
 * new teams), so ABAC rules reading `subject.teams` never see a stale membership for long.
 */
export class TeamsService {
  constructor(
    private readonly transactions: Transactions,
    private readonly teamCommands: CommandHandler<TeamState, TeamCommand, TeamEvent>,
    private readonly teamsRepo: Pick<TeamsRepository, 'find' | 'list' | 'members' | 'membershipsOf' | 'userActive'>,
    private readonly agents: TeamAgents,
  ) {}

  async create(caller: Principal, input: { teamId: string; name: string }) {
    const r = await this.teamCommands.handle(teamStream(caller.tenantId, input.teamId), { type: 'CreateTeam', data: input, metadata: meta(caller) }, 0);
    return { teamId: input.teamId, name: input.name, status: 'active' as const, version: r.version };
  }

  async rename(caller: Principal, teamId: string, name: string, ifMatch?: number) {
    const r = await this.teamCommands.handle(teamStream(caller.tenantId, teamId), { type: 'RenameTeam', data: { teamId, name }, metadata: meta(caller) }, ifMatch);
    return { teamId, name, version: r.version };
  }

  async archive(caller: Principal, teamId: string): Promise<void> {
    await this.teamCommands.handle(
      teamStream(caller.tenantId, teamId),
      { type: 'ArchiveTeam', data: { teamId, activeAgents: await this.transactions.inTransaction((tx) => this.agents.activeAgentsOf(tx, caller.tenantId, teamId)) }, metadata: meta(caller) },
    );
  }

  async addMember(caller: Principal, teamId: string, userId: string): Promise<void> {
    await this.member(caller.tenantId, actorOf(caller), teamId, userId, true, 'admin');
  }

  async removeMember(caller: Principal, teamId: string, userId: string): Promise<void> {
    await this.member(caller.tenantId, actorOf(caller), teamId, userId, false, 'admin');
  }

  /**
   * At a directory / IdP sign-in: the user is made a member of the teams their groups map
   * to (`groupTeams`), and leaves the teams a mapping gave them that their groups no longer
   * give (an account belongs to one provider, so these are that provider's); memberships an
   * administrator made stay. Teams that do not exist or are archived are skipped.
   */
  async syncMappedTeams(tenantId: string, userId: string, groups: readonly string[], groupTeams: Readonly<Record<string, string>> | undefined, now = new Date()): Promise<void> {
    const wanted = new Set(groups.map((g) => groupTeams?.[g]).filter((t): t is string => t !== undefined));
    const current = await this.transactions.inTransaction(async (tx) => this.teamsRepo.membershipsOf(tx, tenantId, userId));
    const actor: Actor = { type: 'service', id: 'auth' };
    for (const teamId of wanted) {
      if (current.some((m) => m.teamId === teamId)) continue;
      const team = await this.transactions.inTransaction((tx) => this.teamsRepo.find(tx, tenantId, teamId));
      if (team?.status === 'active') await this.member(tenantId, actor, teamId, userId, true, 'group-mapping', now);
    }
    for (const m of current) if (m.source === 'group-mapping' && !wanted.has(m.teamId)) await this.member(tenantId, actor, m.teamId, userId, false, 'group-mapping', now);
  }

  async list(caller: Principal) {
    const rows = await this.transactions.inTransaction((tx) => this.teamsRepo.list(tx, caller.tenantId));
    return rows.map((t) => ({ teamId: t.teamId, name: t.name, status: t.status, createdAt: t.createdAt.toISOString() }));
  }

  async get(caller: Principal, teamId: string) {
    const found = await this.transactions.inTransaction(async (tx) => {
      const team = await this.teamsRepo.find(tx, caller.tenantId, teamId);
      return team && { team, members: await this.teamsRepo.members(tx, caller.tenantId, teamId) };
    });
    if (!found) throw new PalisadeError('not_found', 'team not found');
    const t = found.team;
    return { teamId: t.teamId, name: t.name, status: t.status, createdAt: t.createdAt.toISOString(), members: found.members, version: t.version };
  }

  private async member(tenantId: string, actor: Actor, teamId: string, userId: string, add: boolean, source: TeamMembershipSource, now = new Date()): Promise<void> {
    const metadata = { tenantId, actor, now };
    if (add) {
      const userActive = await this.transactions.inTransaction((tx) => this.teamsRepo.userActive(tx, tenantId, userId));
      await this.teamCommands.handle(teamStream(tenantId, teamId), { type: 'AddTeamMember', data: { teamId, userId, userActive, source }, metadata });
    } else {
      await this.teamCommands.handle(teamStream(tenantId, teamId), { type: 'RemoveTeamMember', data: { teamId, userId, source }, metadata });
    }
  }
}

const actorOf = (p: Principal): Actor => ({ type: p.type, id: p.id });
const meta = (p: Principal) => ({ tenantId: p.tenantId, actor: actorOf(p), now: new Date() });
