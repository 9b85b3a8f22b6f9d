import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { CheckpointJwk } from '@palisade/audit-log';

export interface StoredSigningKey {
  kid: string;
  publicJwk: CheckpointJwk;
  wrappedPrivate: Buffer;
  createdAt: string;
  retiredAt: string | null;
}

/** Checkpoint signing keys (audit_signing_keys) and the KEK check value (audit_kek_check). */
export class SigningKeysRepository {
  constructor(private readonly schema: string) {}

  async all(tx: Transaction): Promise<StoredSigningKey[]> {
    const rows: Array<{ kid: string; public_jwk: CheckpointJwk; wrapped_private: Buffer; created_at: Date; retired_at: Date | null }> = await sqlOf(tx).query(
      `SELECT kid, public_jwk, wrapped_private, created_at, retired_at FROM ${this.schema}.audit_signing_keys ORDER BY created_at`,
    );
    return rows.map((r) => ({
      kid: r.kid,
      publicJwk: r.public_jwk,
      wrappedPrivate: r.wrapped_private,
      createdAt: r.created_at.toISOString(),
      retiredAt: r.retired_at ? r.retired_at.toISOString() : null,
    }));
  }

  async active(tx: Transaction): Promise<StoredSigningKey | undefined> {
    return (await this.all(tx)).find((k) => k.retiredAt === null);
  }

  /** Serialize key changes across instances (transaction-scoped advisory lock). */
  async lock(tx: Transaction): Promise<void> {
    await sqlOf(tx).query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`${this.schema}/audit-signing-keys`]);
  }

  async retireActive(tx: Transaction): Promise<void> {
    await sqlOf(tx).query(`UPDATE ${this.schema}.audit_signing_keys SET retired_at = now() WHERE retired_at IS NULL`);
  }

  async insert(tx: Transaction, key: { kid: string; publicJwk: CheckpointJwk; wrappedPrivate: Buffer }): Promise<void> {
    await sqlOf(tx).query(`INSERT INTO ${this.schema}.audit_signing_keys (kid, public_jwk, wrapped_private) VALUES ($1, $2::jsonb, $3)`, [
      key.kid,
      JSON.stringify(key.publicJwk),
      key.wrappedPrivate,
    ]);
  }

  async kekCheck(tx: Transaction): Promise<Buffer | undefined> {
    const rows: Array<{ check_value: Buffer }> = await sqlOf(tx).query(`SELECT check_value FROM ${this.schema}.audit_kek_check WHERE id = 1`);
    return rows[0]?.check_value;
  }

  async saveKekCheck(tx: Transaction, value: Buffer): Promise<void> {
    await sqlOf(tx).query(`INSERT INTO ${this.schema}.audit_kek_check (id, check_value) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, [value]);
  }
}
