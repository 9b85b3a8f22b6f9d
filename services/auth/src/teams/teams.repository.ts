import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export interface TeamRow {
  teamId: string;
  name: string;
  status: 'active' | 'archived';
  createdAt: Date;
  version: number;
}

interface Row {
  id: string;
  name: string;
  status: 'active' | 'archived';
  created_at: Date;
  version: number;
}

const toTeam = (r: Row): TeamRow => ({ teamId: r.id, name: r.name, status: r.status, createdAt: r.created_at, version: r.version });

/** The user's live teams, department first: what tokens carry. */
export const USER_TEAMS_SQL = (tenant: string, user: string) =>
  `ARRAY(SELECT m.team_id FROM team_members m JOIN teams t ON t.tenant_id = m.tenant_id AND t.id = m.team_id
          WHERE m.tenant_id = ${tenant} AND m.user_id = ${user} AND t.status = 'active' ORDER BY m.position, m.team_id)`;

export class TeamsRepository {
  async find(tx: Transaction, tenantId: string, teamId: string): Promise<TeamRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT id, name, status, created_at, version FROM teams WHERE tenant_id = $1 AND id = $2`, [tenantId, teamId]);
    return rows[0] && toTeam(rows[0]);
  }

  async list(tx: Transaction, tenantId: string): Promise<TeamRow[]> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT id, name, status, created_at, version FROM teams WHERE tenant_id = $1 ORDER BY id LIMIT 1000`, [tenantId]);
    return rows.map(toTeam);
  }

  async members(tx: Transaction, tenantId: string, teamId: string): Promise<string[]> {
    const rows: Array<{ user_id: string }> = await sqlOf(tx).query(`SELECT user_id FROM team_members WHERE tenant_id = $1 AND team_id = $2 ORDER BY position, user_id LIMIT 10000`, [
      tenantId,
      teamId,
    ]);
    return rows.map((r) => r.user_id);
  }

  /** Ids of the user's live teams, the department (first joined) first. */
  async teamsOf(tx: Transaction, tenantId: string, userId: string): Promise<string[]> {
    const rows: Array<{ teams: string[] }> = await sqlOf(tx).query(`SELECT ${USER_TEAMS_SQL('$1', '$2')} AS teams`, [tenantId, userId]);
    return rows[0]?.teams ?? [];
  }

  /** The user's memberships and how each was made. */
  async membershipsOf(tx: Transaction, tenantId: string, userId: string): Promise<Array<{ teamId: string; source: string }>> {
    const rows: Array<{ team_id: string; source: string }> = await sqlOf(tx).query(`SELECT team_id, source FROM team_members WHERE tenant_id = $1 AND user_id = $2 ORDER BY position`, [tenantId, userId]);
    return rows.map((r) => ({ teamId: r.team_id, source: r.source }));
  }

  /** Whether the user is an active user of the tenant (a member must be one). */
  async userActive(tx: Transaction, tenantId: string, userId: string): Promise<boolean> {
    const rows: unknown[] = await sqlOf(tx).query(`SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2 AND status = 'active'`, [tenantId, userId]);
    return rows.length > 0;
  }
}

/** Keeps `teams` and `team_members` in step with auth.team.* and auth.team-member.* events. */
export class TeamsProjection implements InlineProjection {
  readonly name = 'teams';
  readonly handles = ['auth.team.created', 'auth.team.renamed', 'auth.team.archived', 'auth.team-member.added', 'auth.team-member.removed'];

  async apply(tx: Transaction, events: readonly EventEnvelope[], streamVersion: number): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as Record<string, string>;
      switch (e.type) {
        case 'auth.team.created':
          await sql.query(`INSERT INTO teams (tenant_id, id, name, status, created_at, version) VALUES ($1, $2, $3, 'active', $4, $5)`, [e.tenantId, d.teamId, d.name, e.occurredAt, streamVersion]);
          break;
        case 'auth.team.renamed':
          await sql.query(`UPDATE teams SET name = $3, version = $4 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.teamId, d.name, streamVersion]);
          break;
        case 'auth.team.archived':
          await sql.query(`UPDATE teams SET status = 'archived', version = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.teamId, streamVersion]);
          break;
        case 'auth.team-member.added':
          await sql.query(`INSERT INTO team_members (tenant_id, team_id, user_id, position, source) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, [
            e.tenantId,
            d.teamId,
            d.userId,
            Date.parse(e.occurredAt),
            d.source,
          ]);
          await sql.query(`UPDATE teams SET version = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.teamId, streamVersion]);
          break;
        case 'auth.team-member.removed':
          await sql.query(`DELETE FROM team_members WHERE tenant_id = $1 AND team_id = $2 AND user_id = $3`, [e.tenantId, d.teamId, d.userId]);
          await sql.query(`UPDATE teams SET version = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.teamId, streamVersion]);
          break;
      }
    }
  }
}
