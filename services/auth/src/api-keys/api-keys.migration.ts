import { sqlMigration } from '@palisade/postgres';

/**
 * API keys (projection of auth.api-key.* events) and their secrets, stored only as
 * SHA-256 digests of 256-bit secrets, written in the transaction of the event. After a
 * rotation the previous secret works until `valid_until` (the overlap window).
 */
export const apiKeysMigration = sqlMigration('AuthApiKeys1764000000007', (s, app) => [
  `CREATE TABLE ${s}.api_keys (
     id           text PRIMARY KEY,
     tenant_id    text NOT NULL,
     owner_type   text NOT NULL CHECK (owner_type IN ('user', 'service-account')),
     owner_id     text NOT NULL,
     name         text NOT NULL,
     scopes       text[] NOT NULL,
     status       text NOT NULL CHECK (status IN ('active', 'revoked')),
     expires_at   timestamptz NOT NULL,
     created_at   timestamptz NOT NULL,
     last_used_at timestamptz,
     version      integer NOT NULL
   )`,
  `CREATE INDEX api_keys_owner ON ${s}.api_keys (tenant_id, owner_type, owner_id)`,
  `CREATE TABLE ${s}.api_key_secrets (
     key_id      text NOT NULL REFERENCES ${s}.api_keys (id),
     secret_hash bytea NOT NULL,
     created_at  timestamptz NOT NULL,
     valid_until timestamptz,
     PRIMARY KEY (key_id, secret_hash)
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.api_keys, ${s}.api_key_secrets TO ${app}`,
]);

/**
 * A service account's key answers to its sponsor (the administrator who made it): it
 * works only while the sponsor is active, with at most the sponsor's scopes. Keys made
 * before there were sponsors have none and stop working: make them again.
 */
export const apiKeySponsorMigration = sqlMigration('AuthApiKeySponsor1764000000031', (s) => [`ALTER TABLE ${s}.api_keys ADD COLUMN sponsor_id text`]);
