import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export interface StoredTransportKey {
  kid: string;
  publicKey: Buffer;
  /** null once destroyed. */
  wrappedPrivate: Buffer | null;
  createdAt: Date;
  notAfter: Date;
  retiredAt: Date | null;
  destroyedAt: Date | null;
}

interface Row {
  kid: string;
  public_key: Buffer;
  wrapped_private: Buffer | null;
  created_at: Date;
  not_after: Date;
  retired_at: Date | null;
  destroyed_at: Date | null;
}

const COLUMNS = 'kid, public_key, wrapped_private, created_at, not_after, retired_at, destroyed_at';
const keyOf = (r: Row): StoredTransportKey => ({
  kid: r.kid,
  publicKey: r.public_key,
  wrappedPrivate: r.wrapped_private,
  createdAt: r.created_at,
  notAfter: r.not_after,
  retiredAt: r.retired_at,
  destroyedAt: r.destroyed_at,
});

/** Audit transport keys (transport-keys.migration.ts, audit_transport_keys). Times come from the caller. */
export class TransportKeysRepository {
  constructor(private readonly schema: string) {}

  private get table(): string {
    return `${this.schema}.audit_transport_keys`;
  }

  async all(tx: Transaction): Promise<StoredTransportKey[]> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM ${this.table} ORDER BY created_at`);
    return rows.map(keyOf);
  }

  async current(tx: Transaction): Promise<StoredTransportKey | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM ${this.table} WHERE retired_at IS NULL`);
    return rows[0] ? keyOf(rows[0]) : undefined;
  }

  async byId(tx: Transaction, kid: string): Promise<StoredTransportKey | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM ${this.table} WHERE kid = $1`, [kid]);
    return rows[0] ? keyOf(rows[0]) : undefined;
  }

  /** Serialize key changes across instances (transaction-scoped advisory lock). */
  async lock(tx: Transaction): Promise<void> {
    await sqlOf(tx).query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`${this.schema}/audit-transport-keys`]);
  }

  async retireCurrent(tx: Transaction, at: Date): Promise<void> {
    await sqlOf(tx).query(`UPDATE ${this.table} SET retired_at = $1 WHERE retired_at IS NULL`, [at]);
  }

  async insert(tx: Transaction, key: { kid: string; publicKey: Buffer; wrappedPrivate: Buffer; createdAt: Date; notAfter: Date }): Promise<void> {
    await sqlOf(tx).query(`INSERT INTO ${this.table} (kid, public_key, wrapped_private, created_at, not_after) VALUES ($1, $2, $3, $4, $5)`, [
      key.kid,
      key.publicKey,
      key.wrappedPrivate,
      key.createdAt,
      key.notAfter,
    ]);
  }

  /** Destroy the private keys of retired keys whose `not_after` is before `cutoff`; returns their kids. */
  async destroyRetiredBefore(tx: Transaction, cutoff: Date, at: Date): Promise<string[]> {
    const rows: unknown = await sqlOf(tx).query(
      `UPDATE ${this.table} SET wrapped_private = NULL, destroyed_at = $2
        WHERE retired_at IS NOT NULL AND destroyed_at IS NULL AND not_after < $1 RETURNING kid`,
      [cutoff, at],
    );
    const returned = (Array.isArray(rows) && Array.isArray(rows[0]) ? rows[0] : rows) as Array<{ kid: string }>;
    return returned.map((r) => r.kid);
  }
}
