import type { KeyObject } from 'node:crypto';
import { algorithmOfKeyId, checkpointKeyId, generateCheckpointKeyPair, privateKeyFromPkcs8, publicJwk, type CheckpointAlgorithm, type Jwks } from '@palisade/audit-log';
import type { Transactions } from '../audit.events';
import type { CheckpointSigner } from '../ingest/chain-writer';
import type { KeyEncryptionKey } from './kek';
import type { SigningKeysRepository } from './signing-keys.repository';

const CACHE_MS = 5000;
const aadOf = (kid: string) => `palisade-audit-signing-key:${kid}`;

/**
 * The checkpoint signing keys, Ed25519 or SM2 per deployment (AUDIT_CHECKPOINT_ALGORITHM):
 * generated here, the private key stored only wrapped by the KEK, never logged; rotation
 * retires the active key, which stays in the JWKS so that the checkpoints it signed keep
 * verifying. The kid names the algorithm (`sm2:` prefix for SM2).
 */
export class SigningKeys implements CheckpointSigner {
  private cached: { kid: string; privateKey: KeyObject; at: number } | undefined;

  constructor(
    private readonly repository: SigningKeysRepository,
    private readonly kek: KeyEncryptionKey,
    private readonly transactions: Transactions,
    private readonly algorithm: CheckpointAlgorithm = 'ed25519',
  ) {}

  /**
   * Refuse a KEK other than the one that wrapped the stored keys; make a first signing key,
   * or a new one when the active key is of another algorithm than the configured one.
   */
  async initialize(): Promise<void> {
    const stored = await this.transactions.inTransaction((tx) => this.repository.kekCheck(tx));
    if (stored && !this.kek.matches(stored)) {
      throw new Error('AUDIT_KEK_FILE holds another key-encryption key than the one that wrapped the stored keys');
    }
    if (!stored) await this.transactions.inTransaction((tx) => this.repository.saveKekCheck(tx, this.kek.checkValue()));
    const active = await this.transactions.inTransaction((tx) => this.repository.active(tx));
    if (!active || algorithmOfKeyId(active.kid) !== this.algorithm) await this.rotateUnless((kid) => algorithmOfKeyId(kid) === this.algorithm);
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
    return this.rotateUnless(() => !force);
  }

  /** Rotates unless, under the lock, the active key is one `keep` accepts. */
  private async rotateUnless(keep: (activeKid: string) => boolean): Promise<{ kid: string; retired: string | null }> {
    const { publicKey, privateKey } = generateCheckpointKeyPair(this.algorithm);
    const jwk = publicJwk(publicKey, 'pending');
    // kid: RFC 7638-style thumbprint of the public key, so it names the key itself (and, by its prefix, the algorithm).
    const kid = checkpointKeyId(jwk);
    const result = await this.transactions.inTransaction(async (tx) => {
      await this.repository.lock(tx);
      const active = await this.repository.active(tx);
      if (active && keep(active.kid)) return { kid: active.kid, retired: null };
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
