import { sqlMigration } from '@palisade/postgres';

/**
 * Failed sign-ins per account and per source address, shared by every auth instance:
 * the lockout holds whichever instance a client reaches. Keys are SHA-256 digests, so
 * no username or address is stored here.
 */
export const signInMigration = sqlMigration('AuthSignInThrottle1764000000003', (s, app) => [
  `CREATE TABLE ${s}.sign_in_throttle (
     key          text PRIMARY KEY,
     failures     integer NOT NULL,
     locked_until timestamptz,
     last_failure timestamptz NOT NULL
   )`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.sign_in_throttle TO ${app}`,
]);
