import { sqlMigration } from '@palisade/postgres';

/** Token signing keys: the private key encrypted at rest (AES-256-GCM under the key-encryption key). */
export const signingKeysMigration = sqlMigration('AuthSigningKeys1764000000005', (s, app) => [
  `CREATE TABLE ${s}.signing_keys (
     kid          text PRIMARY KEY,
     alg          text NOT NULL,
     public_jwk   jsonb NOT NULL,
     private_key  bytea NOT NULL,
     status       text NOT NULL CHECK (status IN ('next', 'active', 'retired', 'revoked')),
     created_at   timestamptz NOT NULL,
     activated_at timestamptz,
     retired_at   timestamptz
   )`,
  `GRANT SELECT, INSERT, UPDATE ON ${s}.signing_keys TO ${app}`,
]);
