import type { EventEnvelope } from '@palisade/contracts';
import { toDomainEvent, type InlineProjection, type Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import { SESSION_EVENT_TYPES, type SessionEvent } from './sessions.events';

export interface SessionRow {
  tenantId: string;
  sessionId: string;
  owner: string;
  collaborators: string[];
  viewers: string[];
  agents: string[];
  status: 'active' | 'archived';
  /** Stream version: the ETag. */
  version: number;
  createdAt: string;
  updatedAt: string;
  archivedAt?: string;
}

interface Row {
  tenant_id: string;
  session_id: string;
  owner: string;
  collaborators: string[];
  viewers: string[];
  agents: string[];
  status: 'active' | 'archived';
  version: number;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
}

const COLUMNS = 'tenant_id, session_id, owner, collaborators, viewers, agents, status, version, created_at, updated_at, archived_at';

function rowOf(r: Row): SessionRow {
  const row: SessionRow = {
    tenantId: r.tenant_id,
    sessionId: r.session_id,
    owner: r.owner,
    collaborators: r.collaborators,
    viewers: r.viewers,
    agents: r.agents,
    status: r.status,
    version: r.version,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
  if (r.archived_at) row.archivedAt = r.archived_at.toISOString();
  return row;
}

/** The only SQL of the sessions context: the `sessions` read model, kept inline with its events. */
export class SessionsRepository {
  constructor(private readonly dataSource: Pick<DataSource, 'query'>) {}

  async session(tenantId: string, sessionId: string): Promise<SessionRow | undefined> {
    const rows: Row[] = await this.dataSource.query(`SELECT ${COLUMNS} FROM sessions WHERE tenant_id = $1 AND session_id = $2`, [tenantId, sessionId]);
    return rows[0] && rowOf(rows[0]);
  }

  /** Sessions a user owns or is shared with, or an agent works in, newest first. */
  async sessionsOf(tenantId: string, member: { user: string } | { agent: string }, limit: number, before?: string): Promise<SessionRow[]> {
    const byMember = 'user' in member ? `(owner = $2 OR (collaborators || viewers) @> ARRAY[$2::text])` : `agents @> ARRAY[$2::text]`;
    const rows: Row[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM sessions
        WHERE tenant_id = $1 AND ${byMember} AND ($3::uuid IS NULL OR session_id < $3::uuid)
        ORDER BY session_id DESC LIMIT $4`,
      [tenantId, 'user' in member ? member.user : member.agent, before ?? null, limit],
    );
    return rows.map(rowOf);
  }

  /** Keeps `sessions` in the transaction of the session's events. */
  readonly projection: InlineProjection = {
    name: 'sessions',
    handles: SESSION_EVENT_TYPES,
    apply: async (tx: Transaction, events: readonly EventEnvelope[], version: number) => {
      const sql = sqlOf(tx);
      for (const envelope of events) {
        const event = toDomainEvent<SessionEvent>(envelope);
        const key = [envelope.tenantId, event.data.sessionId];
        const at = envelope.occurredAt;
        switch (event.type) {
          case 'sandbox-orchestrator.session.created':
            await sql.query(
              `INSERT INTO sessions (tenant_id, session_id, owner, status, version, created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $5)`,
              [...key, event.data.owner, version, at],
            );
            break;
          case 'sandbox-orchestrator.session.shared':
            await sql.query(
              `UPDATE sessions SET
                 collaborators = CASE WHEN $3 = 'collaborator' THEN array_append(array_remove(collaborators, $4), $4) ELSE array_remove(collaborators, $4) END,
                 viewers = CASE WHEN $3 = 'viewer' THEN array_append(array_remove(viewers, $4), $4) ELSE array_remove(viewers, $4) END
               WHERE tenant_id = $1 AND session_id = $2`,
              [...key, event.data.role, event.data.userId],
            );
            break;
          case 'sandbox-orchestrator.session.unshared':
            await sql.query(
              `UPDATE sessions SET collaborators = array_remove(collaborators, $3), viewers = array_remove(viewers, $3) WHERE tenant_id = $1 AND session_id = $2`,
              [...key, event.data.userId],
            );
            break;
          case 'sandbox-orchestrator.session.agent_joined':
            await sql.query(`UPDATE sessions SET agents = array_append(array_remove(agents, $3), $3) WHERE tenant_id = $1 AND session_id = $2`, [...key, event.data.agentId]);
            break;
          case 'sandbox-orchestrator.session.agent_left':
            await sql.query(`UPDATE sessions SET agents = array_remove(agents, $3) WHERE tenant_id = $1 AND session_id = $2`, [...key, event.data.agentId]);
            break;
          case 'sandbox-orchestrator.session.archived':
            await sql.query(`UPDATE sessions SET status = 'archived', archived_at = $3 WHERE tenant_id = $1 AND session_id = $2`, [...key, at]);
            break;
        }
      }
      await sql.query(`UPDATE sessions SET version = $3, updated_at = $4 WHERE tenant_id = $1 AND session_id = $2`, [
        events[0].tenantId,
        (events[0].data as { sessionId: string }).sessionId,
        version,
        events[events.length - 1].occurredAt,
      ]);
    },
  };
}
