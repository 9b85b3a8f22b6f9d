import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import { CredentialRepository, kekOf, materialOf, type KeyringRow, type Row, type VersionMaterial } from '../credential.repository';
import type { CipherName } from '../crypto/envelope';
import type { KeyringEvent } from './keyring.events';

/** Key rings and KEK versions (read model of `keyring-<tenant>`), and re-wrapping data keys under a new KEK. */
export class KeyringRepository extends CredentialRepository {
  /** The tenant's key ring; `lock` takes a share lock so a KEK rotation waits for this transaction. */
  async keyring(tenantId: string, tx?: Transaction, lock = false): Promise<KeyringRow | undefined> {
    const [ring] = await this.q(tx).query(`SELECT cipher, current_version FROM ${this.t.keyrings} WHERE tenant_id = $1${lock ? ' FOR SHARE' : ''}`, [tenantId]);
    if (!ring) return undefined;
    const keys: Row[] = await this.q(tx).query(`SELECT * FROM ${this.t.kek} WHERE tenant_id = $1 ORDER BY version`, [tenantId]);
    return { cipher: ring.cipher as CipherName, currentVersion: ring.current_version as number, keys: keys.map(kekOf) };
  }

  /** The key ring read model, kept by the command handler in the transaction of the events. */
  readonly projection: InlineProjection = {
    name: 'credential-keyrings',
    handles: ['credential.keyring.provisioned', 'credential.keyring.rotated', 'credential.keyring.key_retired', 'credential.keyring.key_revoked', 'credential.keyring.cipher_changed'],
    apply: (tx, events) => this.applyKeyringEvents(tx, events),
  };

  private async applyKeyringEvents(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
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
}
