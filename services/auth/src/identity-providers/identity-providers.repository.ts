import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { ProviderSettings } from './identity-providers.events';

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

  async sealedSecret(tx: Transaction, tenantId: string, providerId: string): Promise<Buffer | undefined> {
    const rows: Array<{ sealed: Buffer }> = await sqlOf(tx).query(`SELECT sealed FROM identity_provider_secrets WHERE tenant_id = $1 AND provider_id = $2`, [tenantId, providerId]);
    return rows[0]?.sealed;
  }

  async saveSecret(tx: Transaction, tenantId: string, providerId: string, sealed: Buffer): Promise<void> {
    await sqlOf(tx).query(
      `INSERT INTO identity_provider_secrets (tenant_id, provider_id, sealed) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, provider_id) DO UPDATE SET sealed = $3`,
      [tenantId, providerId, sealed],
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
