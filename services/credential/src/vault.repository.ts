import { PalisadeError, validateForPublish, type EventEnvelope } from '@palisade/contracts';
import type { Transaction } from '@palisade/eventsourcing';
import { ident, sqlOf } from '@palisade/postgres';
import type { DataSource } from 'typeorm';
import type { CipherName } from './crypto/envelope';
import type { KeyProviderName } from './keys/key-provider';
import type { KeyOrigin, KeyringEvent } from './keyring/keyring.events';
import type { SecretEvent } from './secrets/secrets.events';
import type { StorageBackend, StoredCiphertext } from './storage/ciphertext-store';

export interface KekRow {
  tenantId: string;
  version: number;
  provider: KeyProviderName;
  origin: KeyOrigin;
  keyRef: string;
  state: 'active' | 'retiring' | 'retired' | 'revoked';
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

/** What a redemption needs, read in one query. */
export interface RedemptionRow {
  leaseId: string;
  tenantId: string;
  secretId: string;
  sessionId: string;
  tool: string;
  expiresAt: Date;
  usesLeft: number;
  secretState: string | null;
  version: number | null;
  material: VersionMaterial | null;
  kek: KekRow | null;
}

export interface LeaseRow {
  leaseId: string;
  tokenHash: Buffer;
  tenantId: string;
  secretId: string;
  sessionId: string;
  tool: string;
  expiresAt: Date;
  uses: number;
  usesLeft: number;
  grantedBy: string;
  createdAt: Date;
}

type Row = Record<string, unknown>;

/** The part of a `pg` pool the repository uses. */
interface PgPool {
  query(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>;
}

export interface LeaseGrantWrite {
  lease: LeaseRow;
  event: EventEnvelope;
}

export interface LeaseRedeemWrite {
  leaseId: string;
  tenantId: string;
  secretId: string;
  /** The secret version read and decrypted, and the KEK version that wraps it. */
  version: number;
  kekVersion: number;
  now: Date;
  event: EventEnvelope;
}

function validateAll(events: readonly EventEnvelope[]): void {
  for (const event of events) {
    const validation = validateForPublish(event);
    if (!validation.ok) throw new PalisadeError('internal', `event ${event.type} is malformed`, validation.problems);
  }
}

const kekOf = (r: Row): KekRow => ({
  tenantId: r.tenant_id as string,
  version: r.version as number,
  provider: r.provider as KeyProviderName,
  origin: r.origin as KeyOrigin,
  keyRef: r.key_ref as string,
  state: r.state as KekRow['state'],
});

const secretOf = (r: Row): SecretRow => ({
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

const materialOf = (r: Row, prefix = ''): VersionMaterial => {
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
 * (Statements that change rows and return some are wrapped in `WITH … SELECT`: TypeORM
 * returns `[rows, count]` for a bare UPDATE/DELETE … RETURNING.)
 *
 * The vault's tables. Every method that writes takes the transaction explicitly;
 * reads outside a transaction go through the pool. Tenant in every WHERE clause.
 */
export class VaultRepository {
  private readonly t: Record<'keyrings' | 'kek' | 'secrets' | 'versions' | 'leases' | 'events', string>;

  constructor(
    private readonly dataSource: DataSource,
    schema: string,
  ) {
    const s = ident(schema);
    this.t = { keyrings: `${s}.keyrings`, kek: `${s}.kek_versions`, secrets: `${s}.secrets`, versions: `${s}.secret_versions`, leases: `${s}.leases`, events: `${s}.events` };
  }

  /** Inside a transaction its handle; outside, the lean pool (no TypeORM query runner per call). */
  private q(tx?: Transaction): { query(sql: string, params?: unknown[]): Promise<Row[]> } {
    if (tx) return sqlOf(tx);
    return { query: async (sql, params) => (await this.pool().query(sql, params)).rows };
  }

  /**
   * The `pg` pool under the TypeORM data source (same connections, same type parsers):
   * the lease hot path and plain reads go straight to it, without TypeORM's per-call
   * query runner. Only plain SELECTs and single self-committing statements use it.
   */
  private pool(): PgPool {
    return (this.dataSource.driver as unknown as { master: PgPool }).master;
  }

  // ---- key rings

  /** The tenant's key ring; `lock` takes a share lock so a KEK rotation waits for this transaction. */
  async keyring(tenantId: string, tx?: Transaction, lock = false): Promise<{ cipher: CipherName; currentVersion: number; keys: KekRow[] } | undefined> {
    const [ring] = await this.q(tx).query(`SELECT cipher, current_version FROM ${this.t.keyrings} WHERE tenant_id = $1${lock ? ' FOR SHARE' : ''}`, [tenantId]);
    if (!ring) return undefined;
    const keys: Row[] = await this.q(tx).query(`SELECT * FROM ${this.t.kek} WHERE tenant_id = $1 ORDER BY version`, [tenantId]);
    return { cipher: ring.cipher as CipherName, currentVersion: ring.current_version as number, keys: keys.map(kekOf) };
  }

  async applyKeyringEvents(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const q = sqlOf(tx);
    for (const envelope of events) {
      const e = envelope as unknown as KeyringEvent & { tenantId: string };
      const tenant = envelope.tenantId;
      switch (e.type) {
        case 'credential.keyring.provisioned':
          await q.query(`INSERT INTO ${this.t.keyrings} (tenant_id, cipher, current_version) VALUES ($1, $2, 1)`, [tenant, e.data.cipher]);
          await q.query(`INSERT INTO ${this.t.kek} (tenant_id, version, provider, origin, key_ref, state) VALUES ($1, 1, $2, $3, $4, 'active')`, [
            tenant,
            e.data.provider,
            e.data.origin,
            e.data.keyRef,
          ]);
          break;
        case 'credential.keyring.rotated':
          await q.query(`UPDATE ${this.t.kek} SET state = 'retiring' WHERE tenant_id = $1 AND state = 'active'`, [tenant]);
          await q.query(`INSERT INTO ${this.t.kek} (tenant_id, version, provider, origin, key_ref, state) VALUES ($1, $2, $3, $4, $5, 'active')`, [
            tenant,
            e.data.keyVersion,
            e.data.provider,
            e.data.origin,
            e.data.keyRef,
          ]);
          await q.query(`UPDATE ${this.t.keyrings} SET current_version = $2, updated_at = now() WHERE tenant_id = $1`, [tenant, e.data.keyVersion]);
          break;
        case 'credential.keyring.key_retired':
          await q.query(`UPDATE ${this.t.kek} SET state = 'retired' WHERE tenant_id = $1 AND version = $2`, [tenant, e.data.keyVersion]);
          break;
        case 'credential.keyring.key_revoked':
          await q.query(`UPDATE ${this.t.kek} SET state = 'revoked' WHERE tenant_id = $1 AND version = $2`, [tenant, e.data.keyVersion]);
          // Locks the key ring row: a redemption in flight under this key either committed before, or sees 'revoked'.
          await q.query(`UPDATE ${this.t.keyrings} SET updated_at = now() WHERE tenant_id = $1`, [tenant]);
          break;
        case 'credential.keyring.cipher_changed':
          await q.query(`UPDATE ${this.t.keyrings} SET cipher = $2, updated_at = now() WHERE tenant_id = $1`, [tenant, e.data.cipher]);
          break;
      }
    }
  }

  /** Versions still wrapped under an older KEK, a batch at a time. */
  async wrappedUnder(tenantId: string, kekVersion: number, limit: number): Promise<VersionMaterial[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT * FROM ${this.t.versions} WHERE tenant_id = $1 AND kek_version = $2 ORDER BY secret_id, version LIMIT $3`,
      [tenantId, kekVersion, limit],
    );
    return rows.map((r) => materialOf(r));
  }

  /** Replaces a wrapped data key, only if it is still wrapped under `fromKek`. */
  async rewrap(tx: Transaction, m: VersionMaterial, fromKek: number, toKek: number, wrapped: Buffer): Promise<boolean> {
    const rows: Row[] = await sqlOf(tx).query(
      `WITH changed AS (UPDATE ${this.t.versions} SET wrapped_dek = $5, kek_version = $6
        WHERE tenant_id = $1 AND secret_id = $2 AND version = $3 AND kek_version = $4 RETURNING version) SELECT version FROM changed`,
      [m.tenantId, m.secretId, m.version, fromKek, wrapped, toKek],
    );
    return rows.length === 1;
  }

  async countWrappedUnder(tenantId: string, kekVersion: number, tx?: Transaction): Promise<number> {
    const [{ n }] = await this.q(tx).query(`SELECT count(*)::int AS n FROM ${this.t.versions} WHERE tenant_id = $1 AND kek_version = $2`, [tenantId, kekVersion]);
    return n as number;
  }

  // ---- secrets

  async secret(tenantId: string, secretId: string, tx?: Transaction, lock = false): Promise<SecretRow | undefined> {
    const [row] = await this.q(tx).query(
      `SELECT * FROM ${this.t.secrets} WHERE tenant_id = $1 AND secret_id = $2 AND state <> 'shredded'${lock ? ' FOR UPDATE' : ''}`,
      [tenantId, secretId],
    );
    return row ? secretOf(row) : undefined;
  }

  /** Secrets by (tenant, id), one query for a group of lookups (no lock); one answer per key, in order. */
  async secretsByKey(keys: ReadonlyArray<{ tenantId: string; secretId: string }>): Promise<Array<SecretRow | undefined>> {
    const rows = await this.q().query(
      `SELECT k.ord, s.* FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS k(tenant_id, secret_id, ord)
         JOIN ${this.t.secrets} s ON s.tenant_id = k.tenant_id AND s.secret_id = k.secret_id
        WHERE s.state <> 'shredded'`,
      [keys.map((k) => k.tenantId), keys.map((k) => k.secretId)],
    );
    const byOrd = new Map(rows.map((r) => [Number(r.ord), secretOf(r)]));
    return keys.map((_, i) => byOrd.get(i + 1));
  }

  async secretByName(tenantId: string, name: string): Promise<SecretRow | undefined> {
    const [row] = await this.dataSource.query(`SELECT * FROM ${this.t.secrets} WHERE tenant_id = $1 AND name = $2 AND state <> 'shredded'`, [tenantId, name]);
    return row ? secretOf(row) : undefined;
  }

  async secrets(tenantId: string, limit: number, after?: string): Promise<SecretRow[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT * FROM ${this.t.secrets} WHERE tenant_id = $1 AND state <> 'shredded' AND ($2::uuid IS NULL OR secret_id > $2::uuid)
        ORDER BY secret_id LIMIT $3`,
      [tenantId, after ?? null, limit],
    );
    return rows.map(secretOf);
  }

  async versions(tenantId: string, secretId: string, tx?: Transaction): Promise<VersionMaterial[]> {
    const rows: Row[] = await this.q(tx).query(`SELECT * FROM ${this.t.versions} WHERE tenant_id = $1 AND secret_id = $2 ORDER BY version`, [tenantId, secretId]);
    return rows.map((r) => materialOf(r));
  }

  async insertVersion(tx: Transaction, m: VersionMaterial): Promise<void> {
    const sealed = m.stored.storage === 'postgres' ? m.stored.sealed : undefined;
    await sqlOf(tx).query(
      `INSERT INTO ${this.t.versions} (tenant_id, secret_id, version, state, cipher, kek_version, wrapped_dek, storage, iv, tag, ciphertext, external_ref, created_at)
       VALUES ($1, $2, $3, 'current', $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        m.tenantId,
        m.secretId,
        m.version,
        m.cipher,
        m.kekVersion,
        m.wrappedDek,
        m.stored.storage,
        sealed?.iv ?? null,
        sealed?.tag ?? null,
        sealed?.ciphertext ?? null,
        m.stored.storage === 'aws-secrets-manager' ? m.stored.ref : null,
        m.createdAt,
      ],
    );
  }

  /** Deletes the material of versions (shredding): wrapped data keys and inline ciphertexts. */
  async deleteVersions(tx: Transaction, tenantId: string, secretId: string, versions?: number[]): Promise<number> {
    const rows: Row[] = await sqlOf(tx).query(
      `WITH gone AS (DELETE FROM ${this.t.versions} WHERE tenant_id = $1 AND secret_id = $2 AND ($3::int[] IS NULL OR version = ANY($3::int[])) RETURNING version)
       SELECT version FROM gone`,
      [tenantId, secretId, versions ?? null],
    );
    return rows.length;
  }

  async applySecretEvents(tx: Transaction, streamVersion: number, events: readonly EventEnvelope[]): Promise<void> {
    const q = sqlOf(tx);
    for (const envelope of events) {
      const e = envelope as unknown as SecretEvent;
      const tenant = envelope.tenantId;
      const at = envelope.occurredAt;
      switch (e.type) {
        case 'credential.secret.created':
          await q.query(
            `INSERT INTO ${this.t.secrets} (tenant_id, secret_id, name, scopes, state, current_version, storage, rotation_days, overlap_seconds,
                                            next_rotation_at, created_by, created_at, updated_at, stream_version)
             VALUES ($1, $2, $3, $4, 'active', 1, $5, $6, $7, $8, $9, $10, $10, $11)`,
            [tenant, e.data.secretId, e.data.name, JSON.stringify(e.data.scopes), e.data.storage, e.data.rotationDays, e.data.overlapSeconds, e.data.nextRotationAt, `${envelope.actor.type}:${envelope.actor.id}`, at, streamVersion],
          );
          break;
        case 'credential.secret.rotated':
          await q.query(
            `UPDATE ${this.t.versions} SET state = 'overlap', retires_at = $4 WHERE tenant_id = $1 AND secret_id = $2 AND version = $3`,
            [tenant, e.data.secretId, e.data.previousVersion, e.data.previousRetiresAt],
          );
          await q.query(
            `UPDATE ${this.t.secrets} SET current_version = $3, next_rotation_at = $4, rotation_state = 'ok', updated_at = $5, stream_version = $6
              WHERE tenant_id = $1 AND secret_id = $2`,
            [tenant, e.data.secretId, e.data.version, e.data.nextRotationAt, at, streamVersion],
          );
          break;
        case 'credential.secret.version_retired':
          await this.deleteVersions(tx, tenant, e.data.secretId, [e.data.version]);
          await this.touch(tx, tenant, e.data.secretId, at, streamVersion);
          break;
        case 'credential.secret.revoked':
          await q.query(`UPDATE ${this.t.secrets} SET state = 'revoked', updated_at = $3, stream_version = $4 WHERE tenant_id = $1 AND secret_id = $2`, [
            tenant,
            e.data.secretId,
            at,
            streamVersion,
          ]);
          await q.query(`DELETE FROM ${this.t.leases} WHERE tenant_id = $1 AND secret_id = $2`, [tenant, e.data.secretId]);
          break;
        case 'credential.secret.shredded':
          await q.query(`DELETE FROM ${this.t.leases} WHERE tenant_id = $1 AND secret_id = $2`, [tenant, e.data.secretId]);
          await this.deleteVersions(tx, tenant, e.data.secretId);
          await q.query(`UPDATE ${this.t.secrets} SET state = 'shredded', updated_at = $3, stream_version = $4 WHERE tenant_id = $1 AND secret_id = $2`, [
            tenant,
            e.data.secretId,
            at,
            streamVersion,
          ]);
          break;
        case 'credential.secret.rotation_due':
        case 'credential.secret.rotation_overdue':
          await q.query(`UPDATE ${this.t.secrets} SET rotation_state = $3, updated_at = $4, stream_version = $5 WHERE tenant_id = $1 AND secret_id = $2`, [
            tenant,
            e.data.secretId,
            e.type === 'credential.secret.rotation_due' ? 'due' : 'overdue',
            at,
            streamVersion,
          ]);
          break;
      }
    }
  }

  private async touch(tx: Transaction, tenantId: string, secretId: string, at: string, streamVersion: number): Promise<void> {
    await sqlOf(tx).query(`UPDATE ${this.t.secrets} SET updated_at = $3, stream_version = $4 WHERE tenant_id = $1 AND secret_id = $2`, [tenantId, secretId, at, streamVersion]);
  }

  /** Secrets whose rotation date has passed and that were not yet flagged at this level. */
  async rotationCandidates(now: Date, overdueAfterDays: number, limit: number): Promise<Array<{ tenantId: string; secretId: string }>> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT tenant_id, secret_id FROM ${this.t.secrets}
        WHERE state = 'active' AND next_rotation_at <= $1
          AND (rotation_state = 'ok' OR (rotation_state = 'due' AND next_rotation_at <= $1::timestamptz - make_interval(days => $2)))
        ORDER BY next_rotation_at LIMIT $3`,
      [now, overdueAfterDays, limit],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id as string, secretId: r.secret_id as string }));
  }

  async versionsToRetire(now: Date, limit: number): Promise<Array<{ tenantId: string; secretId: string; version: number }>> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT tenant_id, secret_id, version FROM ${this.t.versions} WHERE state = 'overlap' AND retires_at <= $1 ORDER BY retires_at LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id as string, secretId: r.secret_id as string, version: r.version as number }));
  }

  // ---- leases

  /**
   * Leases by token hash, each with its secret's current version material and its KEK, in
   * one query for a group of redemptions (no lock); one answer per hash, in order.
   */
  async redemptions(tokenHashes: readonly Buffer[]): Promise<Array<RedemptionRow | undefined>> {
    const rows = await this.q().query(
      `SELECT h.ord, l.lease_id, l.tenant_id, l.secret_id, l.session_id, l.tool, l.expires_at, l.uses_left,
              s.state AS secret_state, s.current_version,
              v.version AS v_version, v.cipher AS v_cipher, v.kek_version AS v_kek_version, v.wrapped_dek AS v_wrapped_dek,
              v.storage AS v_storage, v.iv AS v_iv, v.tag AS v_tag, v.ciphertext AS v_ciphertext, v.external_ref AS v_external_ref,
              v.created_at AS v_created_at,
              k.version AS k_version, k.provider AS k_provider, k.origin AS k_origin, k.key_ref AS k_key_ref, k.state AS k_state
         FROM unnest($1::bytea[]) WITH ORDINALITY AS h(token_hash, ord)
         JOIN ${this.t.leases} l ON l.token_hash = h.token_hash
         LEFT JOIN ${this.t.secrets} s ON s.tenant_id = l.tenant_id AND s.secret_id = l.secret_id
         LEFT JOIN ${this.t.versions} v ON v.tenant_id = l.tenant_id AND v.secret_id = l.secret_id AND v.version = s.current_version
         LEFT JOIN ${this.t.kek} k ON k.tenant_id = l.tenant_id AND k.version = v.kek_version`,
      [tokenHashes],
    );
    const byOrd = new Map(rows.map((r) => [Number(r.ord), r]));
    return tokenHashes.map((_, i) => {
      const r = byOrd.get(i + 1);
      if (!r) return undefined;
      return {
        leaseId: r.lease_id as string,
        tenantId: r.tenant_id as string,
        secretId: r.secret_id as string,
        sessionId: r.session_id as string,
        tool: r.tool as string,
        expiresAt: r.expires_at as Date,
        usesLeft: r.uses_left as number,
        secretState: (r.secret_state as string | null) ?? null,
        version: (r.v_version as number | null) ?? null,
        material: r.v_version === null ? null : materialOf(r, 'v_'),
        kek:
          r.k_version === null
            ? null
            : kekOf({ tenant_id: r.tenant_id, version: r.k_version, provider: r.k_provider, origin: r.k_origin, key_ref: r.k_key_ref, state: r.k_state }),
      };
    });
  }

  /**
   * Commits a group of lease grants in ONE statement (one transaction, one commit, on the
   * lean pool): each lease row with its `credential.lease.granted` event (stream version 1),
   * committed synchronously like every event (a grant acknowledged to its caller survives a
   * database crash; an asynchronous commit was measured to gain nothing beyond the noise
   * here: 1,595–1,701 leases/s asynchronous, 1,513–1,703 synchronous). Any error fails the
   * whole group, which commits nothing.
   */
  async commitGrants(grants: readonly LeaseGrantWrite[]): Promise<void[]> {
    validateAll(grants.map((w) => w.event));
    await this.pool().query(
      `WITH g AS (
         SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::int[], $9::text[],
                              $10::timestamptz[], $11::uuid[], $12::text[], $13::jsonb[])
           AS g(lease_id, token_hash, tenant_id, secret_id, session_id, tool, expires_at, uses, granted_by, created_at, event_id, event_type, envelope)
       ), granted AS (
         INSERT INTO ${this.t.leases} (lease_id, token_hash, tenant_id, secret_id, session_id, tool, expires_at, uses, uses_left, granted_by, created_at)
         SELECT lease_id, token_hash, tenant_id, secret_id, session_id, tool, expires_at, uses, uses, granted_by, created_at FROM g
         RETURNING lease_id
       ), appended AS (
         INSERT INTO ${this.t.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT 'lease-' || g.lease_id, 1, g.event_id, g.event_type, g.tenant_id, g.envelope FROM g
         RETURNING stream_id
       )
       SELECT count(*) FROM appended`,
      [
        grants.map((w) => w.lease.leaseId),
        grants.map((w) => w.lease.tokenHash),
        grants.map((w) => w.lease.tenantId),
        grants.map((w) => w.lease.secretId),
        grants.map((w) => w.lease.sessionId),
        grants.map((w) => w.lease.tool),
        grants.map((w) => w.lease.expiresAt),
        grants.map((w) => w.lease.uses),
        grants.map((w) => w.lease.grantedBy),
        grants.map((w) => w.lease.createdAt),
        grants.map((w) => w.event.id),
        grants.map((w) => w.event.type),
        grants.map((w) => JSON.stringify(w.event)),
      ],
    );
    return grants.map(() => undefined);
  }

  /**
   * Commits a group of redemptions in ONE statement (one transaction, one synchronous
   * commit, on the lean pool). Each takes one use of its lease only while the lease is
   * unexpired and has uses left, its secret is active at the version read and the KEK that
   * wraps that version is neither revoked nor retired, and appends its
   * `credential.secret.read` event at stream version 1 + n (n the use taken) in the same
   * statement: no use without its record, no record without its use. The secret and KEK
   * rows are share-locked, so a revocation, rotation or retirement waits for the statement,
   * and a redemption queued behind one re-checks the new row (the KEK row is locked too:
   * PostgreSQL re-reads only locked rows then). A lease appears at most once per group
   * (the caller's group commit ensures it). Answers, per redemption in order, the use
   * number, or undefined when refused. Any error fails the whole group, which commits nothing.
   */
  async commitRedemptions(redeems: readonly LeaseRedeemWrite[]): Promise<Array<number | undefined>> {
    validateAll(redeems.map((w) => w.event));
    const { rows } = await this.pool().query(
      `WITH r AS (
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::int[], $5::int[], $6::timestamptz[], $7::uuid[], $8::text[], $9::jsonb[])
           WITH ORDINALITY AS r(lease_id, tenant_id, secret_id, version, kek_version, at, event_id, event_type, envelope, ord)
       ), live AS (
         SELECT r.ord FROM r
           JOIN ${this.t.secrets} s ON s.tenant_id = r.tenant_id AND s.secret_id = r.secret_id
           JOIN ${this.t.kek} k ON k.tenant_id = r.tenant_id AND k.version = r.kek_version
          WHERE s.state = 'active' AND s.current_version = r.version AND k.state IN ('active', 'retiring')
          FOR SHARE OF s, k
       ), used AS (
         UPDATE ${this.t.leases} l SET uses_left = l.uses_left - 1
           FROM r JOIN live ON live.ord = r.ord
          WHERE l.lease_id = r.lease_id AND l.tenant_id = r.tenant_id AND l.secret_id = r.secret_id AND l.uses_left > 0 AND l.expires_at > r.at
         RETURNING r.ord, l.lease_id, l.uses - l.uses_left AS n
       ), appended AS (
         INSERT INTO ${this.t.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT 'lease-' || u.lease_id, 1 + u.n, r.event_id, r.event_type, r.tenant_id, r.envelope FROM used u JOIN r ON r.ord = u.ord
         RETURNING stream_id
       )
       SELECT ord, n FROM used`,
      [
        redeems.map((w) => w.leaseId),
        redeems.map((w) => w.tenantId),
        redeems.map((w) => w.secretId),
        redeems.map((w) => w.version),
        redeems.map((w) => w.kekVersion),
        redeems.map((w) => w.now),
        redeems.map((w) => w.event.id),
        redeems.map((w) => w.event.type),
        redeems.map((w) => JSON.stringify(w.event)),
      ],
    );
    const uses = new Map<number, number>(rows.map((r) => [Number(r.ord), r.n as number]));
    return redeems.map((_, i) => uses.get(i + 1));
  }

  /**
   * Records a service's read of a secret (no lease: internal service secrets) in one
   * statement, only while the secret is active at the version read and the KEK wrapping it
   * is neither revoked nor retired (both rows share-locked, as for redemptions). The event
   * opens its own stream `secret-read-<event id>`, so reads never contend with each other
   * or move the secret's ETag. Answers whether it was recorded.
   */
  async commitServiceRead(w: { tenantId: string; secretId: string; version: number; kekVersion: number; event: EventEnvelope }): Promise<boolean> {
    validateAll([w.event]);
    const { rows } = await this.pool().query(
      `WITH live AS (
         SELECT s.secret_id FROM ${this.t.secrets} s
           JOIN ${this.t.kek} k ON k.tenant_id = s.tenant_id AND k.version = $4
          WHERE s.tenant_id = $1 AND s.secret_id = $2 AND s.state = 'active' AND s.current_version = $3 AND k.state IN ('active', 'retiring')
          FOR SHARE OF s, k
       ), appended AS (
         INSERT INTO ${this.t.events} (stream_id, stream_version, event_id, event_type, tenant_id, envelope)
         SELECT 'secret-read-' || $5::text, 1, $5::uuid, $6, $1, $7::jsonb FROM live
         RETURNING stream_id
       )
       SELECT count(*)::int AS n FROM appended`,
      [w.tenantId, w.secretId, w.version, w.kekVersion, w.event.id, w.event.type, JSON.stringify(w.event)],
    );
    return (rows[0]?.n as number) === 1;
  }

  async purgeLeases(now: Date): Promise<number> {
    const rows: Row[] = await this.dataSource.query(`WITH gone AS (DELETE FROM ${this.t.leases} WHERE expires_at <= $1 RETURNING lease_id) SELECT lease_id FROM gone`, [now]);
    return rows.length;
  }
}
