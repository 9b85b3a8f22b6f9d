import { sqlMigration } from '@palisade/postgres';

/**
 * Second factors. TOTP secrets are sealed (AES-256-GCM under the key-encryption key),
 * recovery codes stored only as keyed digests, challenges (the short-lived tokens
 * between password and second factor) only as SHA-256 digests. None of it is in an event.
 */
export const mfaMigration = sqlMigration('AuthMfa1764000000006', (s, app) => [
  `ALTER TABLE ${s}.users ADD COLUMN mfa_enrolled boolean NOT NULL DEFAULT false`,
  `CREATE TABLE ${s}.mfa_totp (
     tenant_id     text NOT NULL,
     user_id       text NOT NULL,
     secret_sealed bytea NOT NULL,
     status        text NOT NULL CHECK (status IN ('pending', 'active')),
     last_step     bigint,
     created_at    timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (tenant_id, user_id)
   )`,
  `CREATE TABLE ${s}.mfa_recovery_codes (
     tenant_id text NOT NULL,
     user_id   text NOT NULL,
     code_hash bytea NOT NULL,
     used_at   timestamptz,
     PRIMARY KEY (tenant_id, user_id, code_hash)
   )`,
  `CREATE TABLE ${s}.mfa_challenges (
     token_hash bytea PRIMARY KEY,
     tenant_id  text NOT NULL,
     user_id    text NOT NULL,
     purpose    text NOT NULL CHECK (purpose IN ('verify', 'enrol')),
     audience   text[] NOT NULL,
     expires_at timestamptz NOT NULL,
     attempts   integer NOT NULL DEFAULT 0,
     used_at    timestamptz
   )`,
  `CREATE INDEX mfa_challenges_expiry ON ${s}.mfa_challenges (expires_at)`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.mfa_totp, ${s}.mfa_recovery_codes, ${s}.mfa_challenges TO ${app}`,
]);
