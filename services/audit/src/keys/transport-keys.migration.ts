import { sqlMigration } from '@palisade/postgres';

/**
 * The audit transport keys (README "Personal data"): X25519 key pairs producers seal
 * `personal` to (libs/nats TransportPersonalSealer), the private key only wrapped by the
 * KEK. One current key (not retired); a retired key still opens what producers sealed
 * before `not_after` until the grace period after it, then its private key is destroyed
 * (`wrapped_private` NULL): members still sealed to it are refused at ingest. The
 * application role reads, creates, retires and destroys; it never deletes a row.
 */
export const transportKeysMigration = sqlMigration('AuditTransportKeys1763830000000', (s, app) => [
  `
        CREATE TABLE ${s}.audit_transport_keys (
          kid             text        PRIMARY KEY,
          public_key      bytea       NOT NULL CHECK (octet_length(public_key) = 32),
          wrapped_private bytea,
          created_at      timestamptz NOT NULL,
          not_after       timestamptz NOT NULL CHECK (not_after > created_at),
          retired_at      timestamptz,
          destroyed_at    timestamptz,
          CHECK ((wrapped_private IS NULL) = (destroyed_at IS NOT NULL)),
          CHECK (destroyed_at IS NULL OR retired_at IS NOT NULL)
        )`,
  `CREATE UNIQUE INDEX audit_transport_keys_one_current ON ${s}.audit_transport_keys ((true)) WHERE retired_at IS NULL`,
  `GRANT SELECT, INSERT, UPDATE (retired_at, wrapped_private, destroyed_at) ON ${s}.audit_transport_keys TO ${app}`,
]);
