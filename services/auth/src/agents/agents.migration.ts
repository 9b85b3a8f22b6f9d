import { sqlMigration } from '@palisade/postgres';

/**
 * The agent registry (projection of auth.agent.* events), the agents' guides (the text,
 * written in the transaction of auth.agent-guide.changed), and API keys owned by agents.
 */
export const agentsMigration = sqlMigration('AuthAgents1764000000042', (s, app) => [
  `CREATE TABLE ${s}.agents (
     tenant_id       text NOT NULL,
     id              text NOT NULL,
     name            text NOT NULL,
     owner_id        text NOT NULL,
     team_id         text NOT NULL,
     parent_id       text,
     status          text NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
     created_at      timestamptz NOT NULL,
     last_token_at   timestamptz,
     PRIMARY KEY (tenant_id, id)
   )`,
  // A name names one agent of the tenant until it is retired.
  `CREATE UNIQUE INDEX agents_live_name ON ${s}.agents (tenant_id, name) WHERE status <> 'retired'`,
  `CREATE INDEX agents_owner ON ${s}.agents (tenant_id, owner_id)`,
  `CREATE INDEX agents_team ON ${s}.agents (tenant_id, team_id)`,
  `CREATE INDEX agents_parent ON ${s}.agents (tenant_id, parent_id)`,
  `CREATE TABLE ${s}.agent_guides (
     tenant_id  text NOT NULL,
     agent_id   text NOT NULL,
     text       text NOT NULL,
     version    integer NOT NULL,
     updated_at timestamptz NOT NULL,
     PRIMARY KEY (tenant_id, agent_id)
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.agents, ${s}.agent_guides TO ${app}`,
  `ALTER TABLE ${s}.api_keys DROP CONSTRAINT api_keys_owner_type_check`,
  `ALTER TABLE ${s}.api_keys ADD CONSTRAINT api_keys_owner_type_check CHECK (owner_type IN ('user', 'service-account', 'agent'))`,
]);
