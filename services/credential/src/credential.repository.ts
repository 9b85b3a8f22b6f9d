import { PalisadeError, validateForPublish, type EventEnvelope } from '@palisade/contracts';
import type { Transaction } from '@palisade/eventsourcing';
import { ident, pgPoolOf, sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import type { CipherName } from './crypto/envelope';
import type { KeyProviderName } from './keys/key-provider';
import type { KeyOrigin } from './keyring/keyring.events';
import type { StorageBackend, StoredCiphertext } from './storage/ciphertext-store';

/**
 * What the credential repositories share: the tables of the vault's schema, the row
 * types and their mappers, and the two ways to reach PostgreSQL (a transaction's handle,
 * or the lean `pg` pool for plain reads and self-committing statements). Each feature
 * has its own repository on top (keyring, secrets, leases, service-secrets); only
 * repositories import TypeORM or `pg`.
 */

export interface KekRow {
  tenantId: string;
  version: number;
  provider: KeyProviderName;
  origin: KeyOrigin;
  keyRef: string;
  state: 'active' | 'retiring' | 'retired' | 'revoked';
}

export interface KeyringRow {
  cipher: CipherName;
  currentVersion: number;
  keys: KekRow[];
}

export interface SecretRow {
  tenantId: string;
  secretId: string;
  name: string;
  scopes: string[];
  state: 'active' | 'revoked' | 'shredded';
  currentVersion: number;
  storage: StorageBackend;
  rotationDays: number;
  overlapSeconds: number;
  nextRotationAt: Date;
  rotationState: 'ok' | 'due' | 'overdue';
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  streamVersion: number;
}

/** One version of a secret as stored: its wrapped data key and where its ciphertext is. */
export interface VersionMaterial {
  tenantId: string;
  secretId: string;
  version: number;
  cipher: CipherName;
  kekVersion: number;
  wrappedDek: Buffer;
  stored: StoredCiphertext;
  createdAt: Date;
}

export type Row = Record<string, unknown>;

/** The part of a `pg` pool the repositories use (a named statement is prepared once per connection). */
interface PgPool {
  query(sql: string | { name: string; text: string; values: unknown[] }, params?: unknown[]): Promise<{ rows: Row[] }>;
}

export type CredentialTable = 'keyrings' | 'kek' | 'secrets' | 'versions' | 'leases' | 'events';

export function validateAll(events: readonly EventEnvelope[]): void {
  for (const event of events) {
    const validation = validateForPublish(event);
    if (!validation.ok) throw new PalisadeError('internal', `event ${event.type} is malformed`, validation.problems);
  }
}

export const kekOf = (r: Row): KekRow => ({
  tenantId: r.tenant_id as string,
  version: r.version as number,
  provider: r.provider as KeyProviderName,
  origin: r.origin as KeyOrigin,
  keyRef: r.key_ref as string,
  state: r.state as KekRow['state'],
});

export const secretOf = (r: Row): SecretRow => ({
  tenantId: r.tenant_id as string,
  secretId: r.secret_id as string,
  name: r.name as string,
  scopes: r.scopes as string[],
  state: r.state as SecretRow['state'],
  currentVersion: r.current_version as number,
  storage: r.storage as StorageBackend,
  rotationDays: r.rotation_days as number,
  overlapSeconds: r.overlap_seconds as number,
  nextRotationAt: r.next_rotation_at as Date,
  rotationState: r.rotation_state as SecretRow['rotationState'],
  createdBy: r.created_by as string,
  createdAt: r.created_at as Date,
  updatedAt: r.updated_at as Date,
  streamVersion: r.stream_version as number,
});

export const materialOf = (r: Row, prefix = ''): VersionMaterial => {
  const storage = r[`${prefix}storage`] as StorageBackend;
  const cipher = r[`${prefix}cipher`] as CipherName;
  return {
    tenantId: r.tenant_id as string,
    secretId: r.secret_id as string,
    version: r[`${prefix}version`] as number,
    cipher,
    kekVersion: r[`${prefix}kek_version`] as number,
    wrappedDek: r[`${prefix}wrapped_dek`] as Buffer,
    createdAt: r[`${prefix}created_at`] as Date,
    stored:
      storage === 'postgres'
        ? { storage, sealed: { cipher, iv: r[`${prefix}iv`] as Buffer, tag: r[`${prefix}tag`] as Buffer, ciphertext: r[`${prefix}ciphertext`] as Buffer } }
        : { storage, cipher, ref: r[`${prefix}external_ref`] as string },
  };
};

/**
 * Base of the credential repositories. (Statements that change rows and return some are
 * wrapped in `WITH … SELECT`: TypeORM returns `[rows, count]` for a bare UPDATE/DELETE …
 * RETURNING.) Every method that writes takes the transaction explicitly; reads outside
 * a transaction go through the pool. Tenant in every WHERE clause.
 */
export abstract class CredentialRepository {
  protected readonly t: Record<CredentialTable, string>;

  /** `dataSource`: the connected data source (asked at each use: the service builds its repositories before it connects). */
  constructor(
    private readonly connection: () => DataSource,
    schema: string,
  ) {
    const s = ident(schema);
    this.t = { keyrings: `${s}.keyrings`, kek: `${s}.kek_versions`, secrets: `${s}.secrets`, versions: `${s}.secret_versions`, leases: `${s}.leases`, events: `${s}.events` };
  }

  protected get dataSource(): DataSource {
    return this.connection();
  }

  /** Inside a transaction its handle; outside, the lean pool (no TypeORM query runner per call). */
  protected q(tx?: Transaction): { query(sql: string, params?: unknown[]): Promise<Row[]> } {
    if (tx) return sqlOf(tx);
    return { query: async (sql, params) => (await this.pool().query(sql, params)).rows };
  }

  /**
   * The `pg` pool under the TypeORM data source (same connections, same type parsers):
   * the lease hot path and plain reads go straight to it, without TypeORM's per-call
   * query runner. Only plain SELECTs and single self-committing statements use it.
   */
  protected pool(): PgPool {
    return pgPoolOf<PgPool>(this.dataSource);
  }
}
