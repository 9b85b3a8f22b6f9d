import { sqlMigration } from '@palisade/postgres';

/**
 * Sessions (projection of sign-in / sign-out / revocation events) and their refresh
 * tokens, stored only as SHA-256 digests. A session is a refresh token family.
 */
export const sessionsMigration = sqlMigration('AuthSessions1764000000004', (s, app) => [
  `CREATE TABLE ${s}.sessions (
     id          text PRIMARY KEY,
     tenant_id   text NOT NULL,
     user_id     text NOT NULL,
     audience    text[] NOT NULL,
     mfa         boolean NOT NULL,
     created_at  timestamptz NOT NULL,
     expires_at  timestamptz NOT NULL,
     ended_at    timestamptz
   )`,
  `CREATE INDEX sessions_user ON ${s}.sessions (tenant_id, user_id)`,
  `CREATE TABLE ${s}.refresh_tokens (
     token_hash  bytea PRIMARY KEY,
     session_id  text NOT NULL REFERENCES ${s}.sessions (id),
     issued_at   timestamptz NOT NULL DEFAULT now(),
     used_at     timestamptz
   )`,
  `CREATE INDEX refresh_tokens_session ON ${s}.refresh_tokens (session_id)`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.sessions TO ${app}`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.refresh_tokens TO ${app}`,
]);
