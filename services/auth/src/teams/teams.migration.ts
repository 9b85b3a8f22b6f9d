import { sqlMigration } from '@palisade/postgres';

/**
 * Teams and their members (projection of auth.team.* and auth.team-member.* events).
 * `position` orders a user's memberships: the first live one is their department.
 */
export const teamsMigration = sqlMigration('AuthTeams1764000000041', (s, app) => [
  `CREATE TABLE ${s}.teams (
     tenant_id  text NOT NULL,
     id         text NOT NULL,
     name       text NOT NULL,
     status     text NOT NULL CHECK (status IN ('active', 'archived')),
     created_at timestamptz NOT NULL,
     version    integer NOT NULL,
     PRIMARY KEY (tenant_id, id)
   )`,
  `CREATE TABLE ${s}.team_members (
     tenant_id text NOT NULL,
     team_id   text NOT NULL,
     user_id   text NOT NULL,
     position  bigint NOT NULL,
     source    text NOT NULL,
     PRIMARY KEY (tenant_id, team_id, user_id),
     FOREIGN KEY (tenant_id, team_id) REFERENCES ${s}.teams (tenant_id, id)
   )`,
  `CREATE INDEX team_members_user ON ${s}.team_members (tenant_id, user_id, position)`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.teams TO ${app}`,
  `GRANT SELECT, INSERT, DELETE ON ${s}.team_members TO ${app}`,
]);
