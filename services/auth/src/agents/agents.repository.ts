import { PalisadeError, type EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { AgentStatus } from './agents.events';

export interface AgentRow {
  agentId: string;
  name: string;
  ownerId: string;
  teamId: string;
  parentAgentId: string | null;
  status: AgentStatus;
  createdAt: Date;
  lastTokenAt: Date | null;
}

interface Row {
  id: string;
  name: string;
  owner_id: string;
  team_id: string;
  parent_id: string | null;
  status: AgentStatus;
  created_at: Date;
  last_token_at: Date | null;
}

const COLUMNS = 'id, name, owner_id, team_id, parent_id, status, created_at, last_token_at';
const toAgent = (r: Row): AgentRow => ({
  agentId: r.id,
  name: r.name,
  ownerId: r.owner_id,
  teamId: r.team_id,
  parentAgentId: r.parent_id,
  status: r.status,
  createdAt: r.created_at,
  lastTokenAt: r.last_token_at,
});

export class AgentsRepository {
  async find(tx: Transaction, tenantId: string, agentId: string): Promise<AgentRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM agents WHERE tenant_id = $1 AND id = $2`, [tenantId, agentId]);
    return rows[0] && toAgent(rows[0]);
  }

  /** The tenant's agents, or one owner's. */
  async list(tx: Transaction, tenantId: string, ownerId?: string): Promise<AgentRow[]> {
    const rows: Row[] = ownerId
      ? await sqlOf(tx).query(`SELECT ${COLUMNS} FROM agents WHERE tenant_id = $1 AND owner_id = $2 ORDER BY created_at LIMIT 1000`, [tenantId, ownerId])
      : await sqlOf(tx).query(`SELECT ${COLUMNS} FROM agents WHERE tenant_id = $1 ORDER BY created_at LIMIT 1000`, [tenantId]);
    return rows.map(toAgent);
  }

  /** Subagents of a parent that are not retired. */
  async children(tx: Transaction, tenantId: string, parentId: string): Promise<AgentRow[]> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM agents WHERE tenant_id = $1 AND parent_id = $2 AND status <> 'retired'`, [tenantId, parentId]);
    return rows.map(toAgent);
  }

  async activeAgentsOf(tx: Transaction, tenantId: string, teamId: string): Promise<number> {
    const rows: Array<{ n: string }> = await sqlOf(tx).query(`SELECT count(*) AS n FROM agents WHERE tenant_id = $1 AND team_id = $2 AND status <> 'retired'`, [tenantId, teamId]);
    return Number(rows[0]?.n ?? 0);
  }

  async guide(tx: Transaction, tenantId: string, agentId: string): Promise<{ text: string; version: number; updatedAt: Date } | undefined> {
    const rows: Array<{ text: string; version: number; updated_at: Date }> = await sqlOf(tx).query(`SELECT text, version, updated_at FROM agent_guides WHERE tenant_id = $1 AND agent_id = $2`, [
      tenantId,
      agentId,
    ]);
    return rows[0] && { text: rows[0].text, version: rows[0].version, updatedAt: rows[0].updated_at };
  }

  /** The guide's text, in the transaction of its auth.agent-guide.changed event. */
  async storeGuide(tx: Transaction, tenantId: string, agentId: string, text: string, version: number, now: Date): Promise<void> {
    await sqlOf(tx).query(
      `INSERT INTO agent_guides (tenant_id, agent_id, text, version, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, agent_id) DO UPDATE SET text = EXCLUDED.text, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
      [tenantId, agentId, text, version, now],
    );
  }
}

/** Keeps `agents` in step with auth.agent.* events; a live name taken twice is a 409 naming `name`. */
export class AgentsProjection implements InlineProjection {
  readonly name = 'agents';
  readonly handles = ['auth.agent.registered', 'auth.agent.suspended', 'auth.agent.resumed', 'auth.agent.retired', 'auth.agent-token.issued'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as Record<string, string>;
      if (e.type === 'auth.agent.registered') {
        await sql
          .query(`INSERT INTO agents (tenant_id, id, name, owner_id, team_id, parent_id, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)`, [
            e.tenantId,
            d.agentId,
            d.name,
            d.ownerId,
            d.teamId,
            d.parentAgentId ?? null,
            e.occurredAt,
          ])
          .catch((error: unknown) => {
            const pg = error as { code?: string; constraint?: string };
            if (pg.code === '23505' && pg.constraint === 'agents_live_name') throw new PalisadeError('conflict', 'name: an agent of this name exists', { field: 'name' });
            throw error;
          });
      } else if (e.type === 'auth.agent-token.issued') {
        await sql.query(`UPDATE agents SET last_token_at = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.agentId, e.occurredAt]);
      } else {
        const status = e.type === 'auth.agent.resumed' ? 'active' : e.type === 'auth.agent.suspended' ? 'suspended' : 'retired';
        await sql.query(`UPDATE agents SET status = $3 WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.agentId, status]);
      }
    }
  }
}
