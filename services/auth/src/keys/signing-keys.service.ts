import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { ACCESS_TOKEN_TYPE } from '@palisade/auth-verifier';
import { buildEvent, PalisadeError, SYSTEM_TENANT, type Actor, type EventFactoryContext } from '@palisade/contracts';
import type { EventStore, Transaction } from '@palisade/eventsourcing';
import { open, seal } from '../crypto/key-encryption';
import type { RevocationIssuer } from '../revocations/revocations.projection';
import type { SigningKeyEvent } from './signing-keys.events';
import { SigningKeysRepository, type StoredSigningKey } from './signing-keys.repository';

export interface KeyRingOptions {
  store: EventStore;
  repository: SigningKeysRepository;
  revocations: RevocationIssuer;
  eventContext: EventFactoryContext;
  keyEncryptionKey: Buffer;
  rotationPeriodMs: number;
  /** Retired keys stay published this long (the longest access token lifetime). */
  retiredKeysPublishedMs: number;
  now?: () => Date;
}

interface ActiveKey {
  kid: string;
  key: KeyObject;
}

const SYSTEM_ACTOR: Actor = { type: 'service', id: 'auth' };

/**
 * The token signing keys, shared by every auth instance through PostgreSQL (private
 * keys sealed with AES-256-GCM under the key-encryption key). Rotation without
 * downtime: the next key is published in the JWKS one period before it signs, and a
 * retired key stays published while tokens it signed may live.
 */
export class KeyRing {
  private active: ActiveKey | undefined;
  private published: JWK[] = [];
  private readonly now: () => Date;

  constructor(private readonly options: KeyRingOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Create the first keys if there are none, then load them. */
  async start(): Promise<void> {
    await this.options.store.inTransaction(async (tx) => {
      await this.options.repository.lock(tx);
      const keys = await this.options.repository.all(tx);
      if (!keys.some((k) => k.status === 'active')) await this.create(tx, 'active', SYSTEM_ACTOR);
      if (!keys.some((k) => k.status === 'next')) await this.create(tx, 'next', SYSTEM_ACTOR);
    });
    await this.reload();
  }

  /** Reload from the database (another instance may have rotated); rotate when the period is over. */
  async tick(): Promise<void> {
    await this.reload();
    const active = (await this.load()).find((k) => k.status === 'active');
    if (active?.activatedAt && this.now().getTime() - active.activatedAt.getTime() >= this.options.rotationPeriodMs) {
      await this.rotate(SYSTEM_ACTOR);
    }
  }

  /** next → active, active → retired, and a new next key. */
  async rotate(actor: Actor): Promise<{ kid: string }> {
    const kid = await this.options.store.inTransaction(async (tx) => {
      await this.options.repository.lock(tx);
      return this.promote(tx, await this.options.repository.all(tx), actor);
    });
    await this.reload();
    return { kid };
  }

  /** Withdraw a key at once: tokens it signed are refused everywhere (auth.revocation.issued). */
  async revoke(kid: string, actor: Actor): Promise<void> {
    await this.options.store.inTransaction(async (tx) => {
      await this.options.repository.lock(tx);
      const keys = await this.options.repository.all(tx);
      const key = keys.find((k) => k.kid === kid);
      if (!key || key.status === 'revoked') throw new PalisadeError('not_found', 'signing key not found');
      if (key.status === 'active') await this.promote(tx, keys, actor);
      if (key.status === 'next') await this.create(tx, 'next', actor);
      await this.options.repository.setStatus(tx, kid, 'revoked', this.now());
      const events = await this.append(tx, kid, [{ type: 'auth.signing-key.revoked', data: { kid } }], actor);
      await this.options.revocations.apply(tx, events);
    });
    await this.reload();
  }

  /** The JWKS: next, active and recently retired public keys. */
  jwks(): { keys: JWK[] } {
    return { keys: this.published };
  }

  activeKid(): string | undefined {
    return this.active?.kid;
  }

  async sign(claims: JWTPayload): Promise<string> {
    if (!this.active) throw new PalisadeError('unavailable', 'no signing key loaded yet');
    return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: this.active.kid, typ: ACCESS_TOKEN_TYPE }).sign(this.active.key);
  }

  private async promote(tx: Transaction, keys: StoredSigningKey[], actor: Actor): Promise<string> {
    const now = this.now();
    const next = keys.find((k) => k.status === 'next');
    const active = keys.find((k) => k.status === 'active');
    if (active) {
      await this.options.repository.setStatus(tx, active.kid, 'retired', now);
      await this.append(tx, active.kid, [{ type: 'auth.signing-key.retired', data: { kid: active.kid } }], actor);
    }
    let kid: string;
    if (next) {
      await this.options.repository.setStatus(tx, next.kid, 'active', now);
      await this.append(tx, next.kid, [{ type: 'auth.signing-key.activated', data: { kid: next.kid } }], actor);
      kid = next.kid;
    } else {
      kid = await this.create(tx, 'active', actor);
    }
    await this.create(tx, 'next', actor);
    return kid;
  }

  private async create(tx: Transaction, status: 'active' | 'next', actor: Actor): Promise<string> {
    const kid = `k-${this.now().toISOString().slice(0, 10)}-${randomBytes(6).toString('hex')}`;
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
    const sealed = seal(this.options.keyEncryptionKey, privateKey.export({ format: 'der', type: 'pkcs8' }), kid);
    await this.options.repository.insert(tx, { kid, alg: 'EdDSA', publicJwk, privateKey: sealed, status, now: this.now() });
    const events: SigningKeyEvent[] = [{ type: 'auth.signing-key.created', data: { kid, alg: 'EdDSA' } }];
    if (status === 'active') events.push({ type: 'auth.signing-key.activated', data: { kid } });
    await this.append(tx, kid, events, actor);
    return kid;
  }

  private async append(tx: Transaction, kid: string, events: SigningKeyEvent[], actor: Actor) {
    const envelopes = events.map((e) => buildEvent({ ...this.options.eventContext, now: this.now }, { type: e.type, tenantId: SYSTEM_TENANT, actor, data: e.data }));
    await this.options.store.appendToStream(tx, `signing-key-${kid}`, envelopes, 'any');
    return envelopes;
  }

  private load(): Promise<StoredSigningKey[]> {
    return this.options.store.inTransaction((tx) => this.options.repository.all(tx));
  }

  private async reload(): Promise<void> {
    const keys = await this.load();
    const now = this.now().getTime();
    this.published = keys
      .filter((k) => k.status === 'next' || k.status === 'active' || (k.status === 'retired' && k.retiredAt && now - k.retiredAt.getTime() < this.options.retiredKeysPublishedMs))
      .map((k) => k.publicJwk);
    const active = keys.find((k) => k.status === 'active');
    if (active && active.kid !== this.active?.kid) {
      let der: Buffer;
      try {
        der = open(this.options.keyEncryptionKey, active.privateKey, active.kid);
      } catch (error) {
        // GCM's own message says only "unable to authenticate data": say what an operator must fix (anything else as it is)
        if (!/unable to authenticate data/.test((error as Error).message)) throw error;
        throw new Error(`the configured key-encryption key (AUTH_KEY_ENCRYPTION_KEY[_FILE]) is not the one that wrapped the stored signing key ${active.kid}`);
      }
      this.active = { kid: active.kid, key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
    }
  }
}
