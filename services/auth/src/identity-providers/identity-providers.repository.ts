import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { ProviderSettings } from './identity-providers.events';
import type { StoredIdpSecret } from './idp-secret-store';

export interface IdentityProviderRow {
  providerId: string;
  enabled: boolean;
  settings: ProviderSettings;
  version: number;
  secretSet: boolean;
}

interface Row {
  id: string;
  enabled: boolean;
  settings: ProviderSettings;
  version: number;
  secret_set: boolean;
}

const SELECT = `SELECT p.id, p.enabled, p.settings, p.version,
                       EXISTS (SELECT 1 FROM identity_provider_secrets s WHERE s.tenant_id = p.tenant_id AND s.provider_id = p.id) AS secret_set
                  FROM identity_providers p`;
const toProvider = (r: Row): IdentityProviderRow => ({ providerId: r.id, enabled: r.enabled, settings: r.settings, version: r.version, secretSet: r.secret_set });

export class IdentityProvidersRepository {
  async list(tx: Transaction, tenantId: string): Promise<IdentityProviderRow[]> {
    const rows: Row[] = await sqlOf(tx).query(`${SELECT} WHERE p.tenant_id = $1 ORDER BY p.id`, [tenantId]);
    return rows.map(toProvider);
  }

  async find(tx: Transaction, tenantId: string, providerId: string): Promise<IdentityProviderRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`${SELECT} WHERE p.tenant_id = $1 AND p.id = $2`, [tenantId, providerId]);
    return rows[0] && toProvider(rows[0]);
  }

  async storedSecret(tx: Transaction, tenantId: string, providerId: string): Promise<StoredIdpSecret | undefined> {
    const rows: Array<{ sealed: Buffer | null; secret_id: string | null; secret_version: number | null }> = await sqlOf(tx).query(
      `SELECT sealed, secret_id, secret_version FROM identity_provider_secrets WHERE tenant_id = $1 AND provider_id = $2`,
      [tenantId, providerId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return r.secret_id !== null ? { kind: 'vault', secretId: r.secret_id, version: r.secret_version! } : { kind: 'sealed', sealed: r.sealed! };
  }

  /** The sealed value, or the vault's reference (then no ciphertext stays here). */
  async saveSecret(tx: Transaction, tenantId: string, providerId: string, stored: StoredIdpSecret): Promise<void> {
    const [sealed, secretId, version] = stored.kind === 'sealed' ? [stored.sealed, null, null] : [null, stored.secretId, stored.version];
    await sqlOf(tx).query(
      `INSERT INTO identity_provider_secrets (tenant_id, provider_id, sealed, secret_id, secret_version) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, provider_id) DO UPDATE SET sealed = $3, secret_id = $4, secret_version = $5`,
      [tenantId, providerId, sealed, secretId, version],
    );
  }
}

/** Keeps `identity_providers` in step; removing a provider shreds its secret. */
export class IdentityProvidersProjection implements InlineProjection {
  readonly name = 'identity-providers';
  readonly handles = ['auth.identity-provider.configured', 'auth.identity-provider.removed'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as { providerId: string; enabled?: boolean; settings?: ProviderSettings };
      if (e.type === 'auth.identity-provider.configured') {
        await sql.query(
          `INSERT INTO identity_providers (tenant_id, id, type, enabled, settings, version) VALUES ($1, $2, $3, $4, $5, 1)
           ON CONFLICT (tenant_id, id) DO UPDATE SET enabled = $4, settings = $5, version = identity_providers.version + 1`,
          [e.tenantId, d.providerId, d.settings!.type, d.enabled, JSON.stringify(d.settings)],
        );
      } else {
        await sql.query(`DELETE FROM identity_providers WHERE tenant_id = $1 AND id = $2`, [e.tenantId, d.providerId]);
        await sql.query(`DELETE FROM identity_provider_secrets WHERE tenant_id = $1 AND provider_id = $2`, [e.tenantId, d.providerId]);
      }
    }
  }
}
