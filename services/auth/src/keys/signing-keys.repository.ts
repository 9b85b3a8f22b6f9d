import type { JWK } from 'jose';
import type { Transaction } from '@palisade/eventsourcing';
import { sqlOf } from '@palisade/postgres';

export type KeyStatus = 'next' | 'active' | 'retired' | 'revoked';

export interface StoredSigningKey {
  kid: string;
  alg: string;
  publicJwk: JWK;
  privateKey: Buffer;
  status: KeyStatus;
  activatedAt: Date | null;
  retiredAt: Date | null;
}

interface Row {
  kid: string;
  alg: string;
  public_jwk: JWK;
  private_key: Buffer;
  status: KeyStatus;
  activated_at: Date | null;
  retired_at: Date | null;
}

const toKey = (r: Row): StoredSigningKey => ({
  kid: r.kid,
  alg: r.alg,
  publicJwk: r.public_jwk,
  privateKey: r.private_key,
  status: r.status,
  activatedAt: r.activated_at,
  retiredAt: r.retired_at,
});

export class SigningKeysRepository {
  /** Serialises key changes across auth instances for the rest of the transaction. */
  async lock(tx: Transaction): Promise<void> {
    await sqlOf(tx).query(`SELECT pg_advisory_xact_lock(hashtext('palisade.auth.signing-keys'))`);
  }

  async all(tx: Transaction): Promise<StoredSigningKey[]> {
    const rows: Row[] = await sqlOf(tx).query(`SELECT kid, alg, public_jwk, private_key, status, activated_at, retired_at FROM signing_keys ORDER BY created_at`);
    return rows.map(toKey);
  }

  async insert(tx: Transaction, key: { kid: string; alg: string; publicJwk: JWK; privateKey: Buffer; status: KeyStatus; now: Date }): Promise<void> {
    await sqlOf(tx).query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_key, status, created_at, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [key.kid, key.alg, JSON.stringify(key.publicJwk), key.privateKey, key.status, key.now, key.status === 'active' ? key.now : null],
    );
  }

  async setStatus(tx: Transaction, kid: string, status: KeyStatus, now: Date): Promise<void> {
    await sqlOf(tx).query(
      `UPDATE signing_keys SET status = $2,
         activated_at = CASE WHEN $2 = 'active' THEN $3 ELSE activated_at END,
         retired_at = CASE WHEN $2 IN ('retired', 'revoked') THEN $3 ELSE retired_at END
       WHERE kid = $1`,
      [kid, status, now],
    );
  }
}
