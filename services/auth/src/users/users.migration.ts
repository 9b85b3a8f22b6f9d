import { sqlMigration } from '@palisade/postgres';

/**
 * Users (projection of auth.user.* events) and their password hashes, which never
 * appear in an event: written in the same transaction as auth.user.password-changed.
 */
export const usersMigration = sqlMigration('AuthUsers1764000000002', (s, app) => [
  `CREATE TABLE ${s}.users (
     tenant_id           text NOT NULL,
     id                  text NOT NULL,
     username            text NOT NULL,
     status              text NOT NULL CHECK (status IN ('active', 'disabled')),
     roles               text[] NOT NULL,
     password_hash       text,
     password_expires_at timestamptz,
     sessions_revoked_at timestamptz,
     PRIMARY KEY (tenant_id, id),
     UNIQUE (tenant_id, username)
   )`,
  `CREATE TABLE ${s}.password_history (
     tenant_id  text NOT NULL,
     user_id    text NOT NULL,
     hash       text NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE INDEX password_history_user ON ${s}.password_history (tenant_id, user_id, created_at DESC)`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.users TO ${app}`,
  `GRANT SELECT, INSERT, DELETE ON ${s}.password_history TO ${app}`,
]);
