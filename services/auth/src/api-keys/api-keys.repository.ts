import type { EventEnvelope } from '@palisade/contracts';
import type { InlineProjection, Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';
import type { ApiKeyOwner } from './api-keys.events';

export interface ApiKeyRow {
  keyId: string;
  tenantId: string;
  owner: ApiKeyOwner;
  name: string;
  scopes: string[];
  status: 'active' | 'revoked';
  expiresAt: Date;
  createdAt: Date;
  lastUsedAt: Date | null;
  version: number;
}

/** A key as verification needs it: live secrets' digests, and the owner's standing. */
export interface ApiKeyCredentials extends ApiKeyRow {
  secretHashes: Buffer[];
  /** Roles of the person the key answers to (its user, a service account's sponsor, an agent's owner) while active; null when disabled, gone or unknown. */
  ownerRoles: string[] | null;
  /** For an agent's key: the agent as the registry has it now (null when unknown). */
  agent: { ownerId: string; teamId: string; status: string; parentStatus: string | null } | null;
}

interface Row {
  id: string;
  tenant_id: string;
  owner_type: 'user' | 'service-account' | 'agent';
  owner_id: string;
  sponsor_id: string | null;
  name: string;
  scopes: string[];
  status: 'active' | 'revoked';
  expires_at: Date;
  created_at: Date;
  last_used_at: Date | null;
  version: number;
}

const COLUMNS = 'k.id, k.tenant_id, k.owner_type, k.owner_id, k.sponsor_id, k.name, k.scopes, k.status, k.expires_at, k.created_at, k.last_used_at, k.version';
const toKey = (r: Row): ApiKeyRow => ({
  keyId: r.id,
  tenantId: r.tenant_id,
  owner:
    r.owner_type === 'service-account'
      ? { type: 'service-account', id: r.owner_id, ...(r.sponsor_id ? { sponsor: r.sponsor_id } : {}) }
      : { type: r.owner_type, id: r.owner_id },
  name: r.name,
  scopes: r.scopes,
  status: r.status,
  expiresAt: r.expires_at,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  version: r.version,
});

export class ApiKeysRepository {
  async find(tx: Transaction, tenantId: string, keyId: string): Promise<ApiKeyRow | undefined> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT ${COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 AND k.id = $2`, [tenantId, keyId]);
    return rows[0] && toKey(rows[0]);
  }

  /** The tenant's keys, or only those of one owner. */
  async list(tx: Transaction, tenantId: string, owner?: ApiKeyOwner): Promise<ApiKeyRow[]> {
    const rows: Row[] = owner
      ? await sqlOf(tx).query(`SELECT ${COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 AND k.owner_type = $2 AND k.owner_id = $3 ORDER BY k.created_at LIMIT 1000`, [
          tenantId,
          owner.type,
          owner.id,
        ])
      : await sqlOf(tx).query(`SELECT ${COLUMNS} FROM api_keys k WHERE k.tenant_id = $1 ORDER BY k.created_at LIMIT 1000`, [tenantId]);
    return rows.map(toKey);
  }

  /** Any tenant: the key id is global and is all an API key tells before it is verified. */
  async credentials(tx: Transaction, keyId: string, now: Date): Promise<ApiKeyCredentials | undefined> {
    const rows: Array<Row & { hashes: Buffer[] | null; owner_roles: string[] | null; agent_owner: string | null; agent_team: string | null; agent_status: string | null; parent_status: string | null }> =
      await sqlOf(tx).query(
        `SELECT ${COLUMNS},
                (SELECT array_agg(s.secret_hash) FROM api_key_secrets s WHERE s.key_id = k.id AND (s.valid_until IS NULL OR s.valid_until > $2)) AS hashes,
                (SELECT u.roles FROM users u
                  WHERE u.tenant_id = k.tenant_id AND u.status = 'active'
                    AND u.id = CASE k.owner_type WHEN 'user' THEN k.owner_id WHEN 'agent' THEN a.owner_id ELSE k.sponsor_id END) AS owner_roles,
                a.owner_id AS agent_owner, a.team_id AS agent_team, a.status AS agent_status, p.status AS parent_status
           FROM api_keys k
           LEFT JOIN agents a ON k.owner_type = 'agent' AND a.tenant_id = k.tenant_id AND a.id = k.owner_id
           LEFT JOIN agents p ON p.tenant_id = a.tenant_id AND p.id = a.parent_id
          WHERE k.id = $1`,
        [keyId, now],
      );
    const r = rows[0];
    const agent = r?.agent_owner ? { ownerId: r.agent_owner, teamId: r.agent_team!, status: r.agent_status!, parentStatus: r.parent_status } : null;
    return r && { ...toKey(r), secretHashes: r.hashes ?? [], ownerRoles: r.owner_roles, agent };
  }

  async addSecret(tx: Transaction, keyId: string, secretHash: Buffer, now: Date): Promise<void> {
    await sqlOf(tx).query(`INSERT INTO api_key_secrets (key_id, secret_hash, created_at) VALUES ($1, $2, $3)`, [keyId, secretHash, now]);
  }

  /** At most once a minute per key: last use is a hint, not a write per request. */
  async touch(tx: Transaction, keyId: string, now: Date): Promise<void> {
    await sqlOf(tx).query(`UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '60 seconds')`, [keyId, now]);
  }
}

/** Keeps `api_keys` in step with auth.api-key.* events; a rotation bounds the older secrets. */
export class ApiKeysProjection implements InlineProjection {
  readonly name = 'api-keys';
  readonly handles = ['auth.api-key.created', 'auth.api-key.rotated', 'auth.api-key.revoked'];

  async apply(tx: Transaction, events: readonly EventEnvelope[]): Promise<void> {
    const sql = sqlOf(tx);
    for (const e of events) {
      const d = e.data as Record<string, unknown>;
      if (e.type === 'auth.api-key.created') {
        const owner = d.owner as ApiKeyOwner;
        await sql.query(
          `INSERT INTO api_keys (id, tenant_id, owner_type, owner_id, sponsor_id, name, scopes, status, expires_at, created_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, 1)`,
          [d.keyId, e.tenantId, owner.type, owner.id, owner.type === 'service-account' ? (owner.sponsor ?? null) : null, d.name, d.scopes, d.expiresAt, e.occurredAt],
        );
      } else if (e.type === 'auth.api-key.rotated') {
        await sql.query(`UPDATE api_keys SET version = version + 1 WHERE id = $1 AND tenant_id = $2`, [d.keyId, e.tenantId]);
        await sql.query(`UPDATE api_key_secrets SET valid_until = LEAST(coalesce(valid_until, $2), $2) WHERE key_id = $1`, [d.keyId, d.previousSecretValidUntil]);
      } else {
        await sql.query(`UPDATE api_keys SET status = 'revoked', version = version + 1 WHERE id = $1 AND tenant_id = $2`, [d.keyId, e.tenantId]);
      }
    }
  }
}
