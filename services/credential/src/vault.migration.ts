import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ident } from '@palisade/postgres';

/**
 * The vault's read models and key material tables. Nothing here is append-only: shredding
 * deletes wrapped data keys and ciphertexts for real (the event store never holds them).
 * The application role gets exactly what the vault does: no DDL, no TRUNCATE.
 */
export function vaultMigration(schema: string, appRole: string): new () => MigrationInterface {
  const s = ident(schema);
  const app = ident(appRole);
  return class Vault1763780000000 implements MigrationInterface {
    name = 'Vault1763780000000';

    async up(q: QueryRunner): Promise<void> {
      await q.query(`
        CREATE TABLE ${s}.keyrings (
          tenant_id       text PRIMARY KEY,
          cipher          text NOT NULL,
          current_version integer NOT NULL,
          updated_at      timestamptz NOT NULL DEFAULT now()
        )`);
      await q.query(`
        CREATE TABLE ${s}.kek_versions (
          tenant_id  text NOT NULL,
          version    integer NOT NULL,
          provider   text NOT NULL,
          origin     text NOT NULL,
          key_ref    text NOT NULL,
          state      text NOT NULL CHECK (state IN ('active', 'retiring', 'retired', 'revoked')),
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (tenant_id, version)
        )`);
      await q.query(`
        CREATE TABLE ${s}.secrets (
          tenant_id        text NOT NULL,
          secret_id        uuid NOT NULL,
          name             text NOT NULL,
          scopes           jsonb NOT NULL,
          state            text NOT NULL CHECK (state IN ('active', 'revoked', 'shredded')),
          current_version  integer NOT NULL,
          storage          text NOT NULL,
          rotation_days    integer NOT NULL,
          overlap_seconds  integer NOT NULL,
          next_rotation_at timestamptz NOT NULL,
          rotation_state   text NOT NULL DEFAULT 'ok' CHECK (rotation_state IN ('ok', 'due', 'overdue')),
          created_by       text NOT NULL,
          created_at       timestamptz NOT NULL,
          updated_at       timestamptz NOT NULL,
          stream_version   integer NOT NULL,
          PRIMARY KEY (tenant_id, secret_id)
        )`);
      await q.query(`CREATE UNIQUE INDEX secrets_live_name ON ${s}.secrets (tenant_id, name) WHERE state <> 'shredded'`);
      await q.query(`CREATE INDEX secrets_rotation ON ${s}.secrets (next_rotation_at) WHERE state = 'active'`);
      await q.query(`
        CREATE TABLE ${s}.secret_versions (
          tenant_id    text NOT NULL,
          secret_id    uuid NOT NULL,
          version      integer NOT NULL,
          state        text NOT NULL CHECK (state IN ('current', 'overlap')),
          cipher       text NOT NULL,
          kek_version  integer NOT NULL,
          wrapped_dek  bytea NOT NULL,
          storage      text NOT NULL,
          iv           bytea,
          tag          bytea,
          ciphertext   bytea,
          external_ref text,
          created_at   timestamptz NOT NULL,
          retires_at   timestamptz,
          PRIMARY KEY (tenant_id, secret_id, version),
          FOREIGN KEY (tenant_id, secret_id) REFERENCES ${s}.secrets (tenant_id, secret_id)
        )`);
      await q.query(`CREATE INDEX secret_versions_kek ON ${s}.secret_versions (tenant_id, kek_version)`);
      await q.query(`CREATE INDEX secret_versions_retiring ON ${s}.secret_versions (retires_at) WHERE state = 'overlap'`);
      await q.query(`
        CREATE TABLE ${s}.leases (
          lease_id    uuid PRIMARY KEY,
          token_hash  bytea NOT NULL UNIQUE,
          tenant_id   text NOT NULL,
          secret_id   uuid NOT NULL,
          session_id  text NOT NULL,
          tool        text NOT NULL,
          expires_at  timestamptz NOT NULL,
          uses        integer NOT NULL CHECK (uses > 0),
          uses_left   integer NOT NULL CHECK (uses_left >= 0 AND uses_left <= uses),
          granted_by  text NOT NULL,
          created_at  timestamptz NOT NULL
        )`);
      await q.query(`CREATE INDEX leases_expiry ON ${s}.leases (expires_at)`);
      await q.query(`CREATE INDEX leases_secret ON ${s}.leases (tenant_id, secret_id)`);
      for (const table of ['keyrings', 'kek_versions', 'secrets', 'secret_versions', 'leases']) {
        await q.query(`REVOKE ALL ON ${s}.${table} FROM PUBLIC`);
        await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.${table} TO ${app}`);
      }
    }

    async down(q: QueryRunner): Promise<void> {
      for (const table of ['leases', 'secret_versions', 'secrets', 'kek_versions', 'keyrings']) await q.query(`DROP TABLE ${s}.${table}`);
    }
  };
}
