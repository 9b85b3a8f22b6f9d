import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export interface SsoRequest {
  tenantId: string;
  providerId: string;
  protocol: 'oidc' | 'saml';
  secret: Buffer | null;
  nonce: string | null;
  audience: string[];
}

export class SsoRepository {
  async save(tx: Transaction, key: Buffer, r: SsoRequest, expiresAt: Date): Promise<void> {
    const sql = sqlOf(tx);
    await sql.query(`DELETE FROM sso_requests WHERE expires_at < now() - interval '1 hour'`);
    await sql.query(
      `INSERT INTO sso_requests (key, tenant_id, provider_id, protocol, secret, nonce, audience, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [key, r.tenantId, r.providerId, r.protocol, r.secret, r.nonce, r.audience, expiresAt],
    );
  }

  /** Marks the request used and returns it, once; undefined when unknown, expired or used. */
  async take(tx: Transaction, key: Buffer, protocol: 'oidc' | 'saml', now: Date): Promise<SsoRequest | undefined> {
    const rows: Array<{ tenant_id: string; provider_id: string; protocol: 'oidc' | 'saml'; secret: Buffer | null; nonce: string | null; audience: string[] }> = await sqlOf(tx).query(
      `WITH u AS (
         UPDATE sso_requests SET used_at = $3 WHERE key = $1 AND protocol = $2 AND used_at IS NULL AND expires_at > $3
         RETURNING tenant_id, provider_id, protocol, secret, nonce, audience
       ) SELECT * FROM u`,
      [key, protocol, now],
    );
    const r = rows[0];
    return r && { tenantId: r.tenant_id, providerId: r.provider_id, protocol: r.protocol, secret: r.secret, nonce: r.nonce, audience: r.audience };
  }

  /** The nonce (for SAML: node-saml's value) of a live, unused request, without using it. */
  async peek(tx: Transaction, key: Buffer, protocol: 'oidc' | 'saml', now: Date): Promise<string | undefined> {
    const rows: Array<{ nonce: string | null }> = await sqlOf(tx).query(
      `SELECT nonce FROM sso_requests WHERE key = $1 AND protocol = $2 AND used_at IS NULL AND expires_at > $3`,
      [key, protocol, now],
    );
    return rows[0]?.nonce ?? undefined;
  }

  /** Records an accepted assertion; false when it was accepted before (a replay). */
  async firstUseOfAssertion(tx: Transaction, key: Buffer, expiresAt: Date): Promise<boolean> {
    const sql = sqlOf(tx);
    await sql.query(`DELETE FROM saml_assertions_seen WHERE expires_at < now() - interval '1 hour'`);
    const rows: unknown[] = await sql.query(`INSERT INTO saml_assertions_seen (assertion_key, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING assertion_key`, [key, expiresAt]);
    return rows.length === 1;
  }
}
