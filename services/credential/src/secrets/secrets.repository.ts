import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import { CredentialRepository, materialOf, secretOf, type Row, type SecretRow, type VersionMaterial } from '../credential.repository';
import type { SecretEvent } from './secrets.events';

const SECRET_EVENTS: readonly SecretEvent['type'][] = [
  'credential.secret.created',
  'credential.secret.rotated',
  'credential.secret.version_retired',
  'credential.secret.revoked',
  'credential.secret.shredded',
  'credential.secret.rotation_due',
  'credential.secret.rotation_overdue',
];

/** Secrets (read model of `secret-<id>`) and their versions' material (wrapped data keys, inline ciphertexts). */
export class SecretsRepository extends CredentialRepository {
  async secret(tenantId: string, secretId: string, tx?: Transaction, lock = false): Promise<SecretRow | undefined> {
    const [row] = await this.q(tx).query(
      `SELECT * FROM ${this.t.secrets} WHERE tenant_id = $1 AND secret_id = $2 AND state <> 'shredded'${lock ? ' FOR UPDATE' : ''}`,
      [tenantId, secretId],
    );
    return row ? secretOf(row) : undefined;
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

  /** The secrets read model (and its leases and version material), kept by the command handler in the events' transaction. */
  readonly projection: InlineProjection = {
    name: 'credential-secrets',
    handles: SECRET_EVENTS,
    apply: (tx, events, streamVersion) => this.applySecretEvents(tx, streamVersion, events),
  };

  /** Deletes the material of versions (shredding): wrapped data keys and inline ciphertexts. */
  private async deleteVersions(tx: Transaction, tenantId: string, secretId: string, versions?: number[]): Promise<number> {
    const rows: Row[] = await sqlOf(tx).query(
      `WITH gone AS (DELETE FROM ${this.t.versions} WHERE tenant_id = $1 AND secret_id = $2 AND ($3::int[] IS NULL OR version = ANY($3::int[])) RETURNING version)
       SELECT version FROM gone`,
      [tenantId, secretId, versions ?? null],
    );
    return rows.length;
  }

  private async applySecretEvents(tx: Transaction, streamVersion: number, events: readonly EventEnvelope[]): Promise<void> {
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
}
