import { sqlMigration } from '@palisade/postgres';
import { RATE_LIMIT_TABLE } from './rate-limits';

/** Rate-limit counters shared by the router's instances (`rate-limiter-flexible`'s PostgreSQL layout: key, points, expiry in ms). */
export const rateLimitsMigration = sqlMigration('LlmRouterRateLimits1764900000002', (s, app) => [
  `CREATE TABLE ${s}.${RATE_LIMIT_TABLE} (
     key    varchar(255) PRIMARY KEY,
     points integer NOT NULL DEFAULT 0,
     expire bigint
   )`,
  `GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.${RATE_LIMIT_TABLE} TO ${app}`,
]);
