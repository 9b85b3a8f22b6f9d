import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { PasswordPolicy } from './tenants.events';

export interface TenantRow {
  id: string;
  name: string;
  passwordPolicy: PasswordPolicy;
  mfaRequired: boolean;
  version: number;
}

export class TenantsRepository {
  async count(tx: Transaction): Promise<number> {
    const rows: Array<{ n: number }> = await sqlOf(tx).query(`SELECT count(*)::int AS n FROM tenants`);
    return rows[0].n;
  }

  async list(tx: Transaction): Promise<Array<{ id: string; name: string }>> {
    return sqlOf(tx).query(`SELECT id, name FROM tenants ORDER BY id`);
  }

  async find(tx: Transaction, tenantId: string): Promise<TenantRow | undefined> {
    const rows: Array<{ id: string; name: string; password_policy: PasswordPolicy; mfa_required: boolean; version: number }> = await sqlOf(tx).query(
      `SELECT id, name, password_policy, mfa_required, version FROM tenants WHERE id = $1`,
      [tenantId],
    );
    const r = rows[0];
    return r && { id: r.id, name: r.name, passwordPolicy: r.password_policy, mfaRequired: r.mfa_required, version: r.version };
  }
}

/** Keeps `tenants` in step with auth.tenant.* events, in their transaction. */
export class TenantsProjection implements InlineProjection {
  readonly name = 'tenants';
  readonly handles = ['auth.tenant.created', 'auth.tenant.password-policy-changed', 'auth.tenant.mfa-requirement-changed'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as Record<string, unknown>;
      if (e.type === 'auth.tenant.created') {
        await sql.query(`INSERT INTO tenants (id, name, password_policy, mfa_required, version) VALUES ($1, $2, $3, $4, 1)`, [
          d.tenantId,
          d.name,
          JSON.stringify(d.passwordPolicy),
          d.mfaRequired,
        ]);
      } else if (e.type === 'auth.tenant.password-policy-changed') {
        await sql.query(`UPDATE tenants SET password_policy = $2, version = version + 1 WHERE id = $1`, [d.tenantId, JSON.stringify(d.passwordPolicy)]);
      } else {
        await sql.query(`UPDATE tenants SET mfa_required = $2, version = version + 1 WHERE id = $1`, [d.tenantId, d.mfaRequired]);
      }
    }
  }
}
