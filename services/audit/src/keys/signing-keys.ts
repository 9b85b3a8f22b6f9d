import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { privateKeyFromPkcs8, publicJwk, type Jwks } from '@palisade/audit-log';
import type { Transactions } from '../audit.events';
import type { CheckpointSigner } from '../ingest/chain-writer';
import type { KeyEncryptionKey } from './kek';
import type { SigningKeysRepository } from './signing-keys.repository';

const CACHE_MS = 5000;
const aadOf = (kid: string) => `palisade-audit-signing-key:${kid}`;

/**
 * The Ed25519 checkpoint signing keys: generated here, the private key stored only
 * wrapped by the KEK, never logged; rotation retires the active key, which stays in
 * the JWKS so that the checkpoints it signed keep verifying.
 */
export class SigningKeys implements CheckpointSigner {
  private cached: { kid: string; privateKey: KeyObject; at: number } | undefined;

  constructor(
    private readonly repository: SigningKeysRepository,
    private readonly kek: KeyEncryptionKey,
    private readonly transactions: Transactions,
  ) {}

  /** Refuse a KEK other than the one that wrapped the stored keys; make a first signing key. */
  async initialize(): Promise<void> {
    const stored = await this.transactions.inTransaction((tx) => this.repository.kekCheck(tx));
    if (stored && !this.kek.matches(stored)) {
      throw new Error('AUDIT_KEK_FILE holds another key-encryption key than the one that wrapped the stored keys');
    }
    if (!stored) await this.transactions.inTransaction((tx) => this.repository.saveKekCheck(tx, this.kek.checkValue()));
    if (!(await this.transactions.inTransaction((tx) => this.repository.active(tx)))) await this.rotate(false);
  }

  async current(): Promise<{ kid: string; privateKey: KeyObject }> {
    if (this.cached && Date.now() - this.cached.at < CACHE_MS) return this.cached;
    const active = await this.transactions.inTransaction((tx) => this.repository.active(tx));
    if (!active) throw new Error('no active checkpoint signing key');
    const privateKey = privateKeyFromPkcs8(this.kek.unwrap(active.wrappedPrivate, aadOf(active.kid)));
    this.cached = { kid: active.kid, privateKey, at: Date.now() };
    return this.cached;
  }

  /** A new active key; the previous one is retired (still published). Returns the new and retired kids. */
  async rotate(force = true): Promise<{ kid: string; retired: string | null }> {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const jwk = publicJwk(publicKey, 'pending');
    // kid: RFC 7638-style thumbprint of the public key, so it names the key itself.
    const kid = createHash('sha256').update(JSON.stringify({ crv: 'Ed25519', kty: 'OKP', x: jwk.x })).digest('base64url').slice(0, 22);
    const result = await this.transactions.inTransaction(async (tx) => {
      await this.repository.lock(tx);
      const active = await this.repository.active(tx);
      if (active && !force) return { kid: active.kid, retired: null };
      if (active) await this.repository.retireActive(tx);
      await this.repository.insert(tx, {
        kid,
        publicJwk: { ...jwk, kid },
        wrappedPrivate: this.kek.wrap(privateKey.export({ format: 'der', type: 'pkcs8' }), aadOf(kid)),
      });
      return { kid, retired: active?.kid ?? null };
    });
    this.cached = undefined;
    return result;
  }

  /** Every key, active and retired, as a JWKS. */
  async jwks(): Promise<Jwks> {
    const keys = await this.transactions.inTransaction((tx) => this.repository.all(tx));
    return { keys: keys.map((k) => k.publicJwk) };
  }
}
