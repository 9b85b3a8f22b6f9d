import { TRANSPORT_SEALING_ALG, type TransportKeysReply } from '@palisade/contracts';
import { generateTransportKeyPair, transportKeyId } from '@palisade/nats';
import type { Transactions } from '../audit.events';
import type { KeyEncryptionKey } from './kek';
import type { StoredTransportKey, TransportKeysRepository } from './transport-keys.repository';

const aadOf = (kid: string) => `palisade-audit-transport-key:${kid}`;
/** How long a served reply and an unwrapped private key are kept in memory. */
const CACHE_MS = 30_000;

export interface TransportKeyPolicy {
  /** A new current key after this long (AUDIT_TRANSPORT_KEY_ROTATION_MS). */
  rotationMs: number;
  /**
   * How long a private key outlives the last instant producers may seal to it (its
   * `notAfter`): the longest an event may wait in a producer's outbox or in JetStream
   * (AUDIT_TRANSPORT_KEY_GRACE_MS, default 7 days; rotation default 1 day). Then it is destroyed.
   */
  graceMs: number;
}

/**
 * The audit transport keys (README "Personal data"): X25519 key pairs that producers seal
 * `personal` to (libs/nats TransportPersonalSealer), so that only the audit service can
 * open it. Created at the first start, rotated every `rotationMs` (`maintain`, on a timer
 * of every instance, serialized by a lock), the private key stored only wrapped by the
 * KEK and never logged. Producers may seal to a key until its `notAfter` (created + two
 * rotation periods: a producer that cannot reach audit to learn the new key keeps
 * sealing to the one it holds for a while); its private key is destroyed `graceMs` after
 * that, once retired. Times from `now`, so tests drive them.
 */
export class TransportKeys {
  private reply: { value: TransportKeysReply; at: number } | undefined;
  private readonly privateKeys = new Map<string, { key: Buffer | undefined; at: number }>();

  constructor(
    private readonly repository: TransportKeysRepository,
    private readonly kek: KeyEncryptionKey,
    private readonly transactions: Transactions,
    private readonly policy: TransportKeyPolicy,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * A current key that is not due for rotation (making one when there is none or it is
   * due), and the private keys past their grace destroyed. Returns what it did.
   */
  async maintain(): Promise<{ current: string; rotated: string | null; destroyed: string[] }> {
    const result = await this.transactions.inTransaction(async (tx) => {
      await this.repository.lock(tx);
      const now = this.now();
      const current = await this.repository.current(tx);
      let rotated: string | null = null;
      let currentKid = current?.kid;
      if (!current || current.createdAt.getTime() + this.policy.rotationMs <= now.getTime()) {
        // a pair made only when one is due: this runs every minute on every instance, a rotation once a period
        const pair = await generateTransportKeyPair();
        try {
          const kid = transportKeyId(pair.publicKey);
          if (current) await this.repository.retireCurrent(tx, now);
          await this.repository.insert(tx, {
            kid,
            publicKey: pair.publicKey,
            wrappedPrivate: this.kek.wrap(pair.privateKey, aadOf(kid)),
            createdAt: now,
            notAfter: new Date(now.getTime() + 2 * this.policy.rotationMs),
          });
          rotated = current?.kid ?? null;
          currentKid = kid;
        } finally {
          pair.privateKey.fill(0);
        }
      }
      const destroyed = await this.repository.destroyRetiredBefore(tx, new Date(now.getTime() - this.policy.graceMs), now);
      return { current: currentKid!, rotated, destroyed, made: currentKid !== current?.kid };
    });
    if (result.made) this.reply = undefined;
    for (const d of result.destroyed) this.privateKeys.delete(d);
    return { current: result.current, rotated: result.rotated, destroyed: result.destroyed };
  }

  /** What TRANSPORT_KEYS_SUBJECT answers: the current key (cached for 30 s). */
  async publicKeys(): Promise<TransportKeysReply> {
    const at = Date.now();
    if (this.reply && at - this.reply.at < CACHE_MS) return this.reply.value;
    const current = await this.transactions.inTransaction((tx) => this.repository.current(tx));
    const value: TransportKeysReply = { keys: current ? [publicOf(current)] : [] };
    this.reply = { value, at };
    return value;
  }

  /** The raw private key `kid` names, or none (no such key, or destroyed). Never logged. */
  async privateKey(kid: string): Promise<Buffer | undefined> {
    const at = Date.now();
    const cached = this.privateKeys.get(kid);
    if (cached && at - cached.at < CACHE_MS) return cached.key;
    const row = await this.transactions.inTransaction((tx) => this.repository.byId(tx, kid));
    const key = row?.wrappedPrivate ? this.kek.unwrap(row.wrappedPrivate, aadOf(row.kid)) : undefined;
    // a bounded map: ids asked for are either real keys (few) or a forger's (not remembered)
    if (key) this.privateKeys.set(kid, { key, at });
    else this.privateKeys.delete(kid);
    return key;
  }

  toJSON(): string {
    return '[TransportKeys]';
  }
}

function publicOf(k: StoredTransportKey): TransportKeysReply['keys'][number] {
  return {
    kid: k.kid,
    kty: 'OKP',
    crv: 'X25519',
    x: k.publicKey.toString('base64url'),
    alg: TRANSPORT_SEALING_ALG,
    createdAt: k.createdAt.toISOString(),
    notAfter: k.notAfter.toISOString(),
  };
}
