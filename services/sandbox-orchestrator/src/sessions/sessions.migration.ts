import { sqlMigration } from '@palisade/postgres';

/**
 * Sessions (read model of `session-<id>`, kept in the transaction of its events): the
 * owner, the people it is shared with by role, the agents working in it, and the stream
 * version (ETag). Looked up by tenant and id, listed by member.
 */
export const sessionsMigration = sqlMigration('SandboxSessions1764800000001', (s, app) => [
  `CREATE TABLE ${s}.sessions (
     tenant_id     text NOT NULL,
     session_id    uuid NOT NULL,
     owner         text NOT NULL,
     collaborators text[] NOT NULL DEFAULT '{}',
     viewers       text[] NOT NULL DEFAULT '{}',
     agents        text[] NOT NULL DEFAULT '{}',
     status        text NOT NULL CHECK (status IN ('active', 'archived')),
     version       integer NOT NULL,
     created_at    timestamptz NOT NULL,
     updated_at    timestamptz NOT NULL,
     archived_at   timestamptz,
     PRIMARY KEY (tenant_id, session_id)
   )`,
  `CREATE INDEX sessions_owner ON ${s}.sessions (tenant_id, owner)`,
  `CREATE INDEX sessions_shares ON ${s}.sessions USING gin ((collaborators || viewers))`,
  `CREATE INDEX sessions_agents ON ${s}.sessions USING gin (agents)`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.sessions TO ${app}`,
]);
