import { PalisadeError, type Actor, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore, type Transaction } from '@palisade/eventsourcing';
import { authorize, type CredentialAccessPolicy } from '../access/access-policy';
import type { KeyringRow } from '../credential.repository';
import { actorOf, SYSTEM_ACTOR, type Clock, type CredentialSettings } from '../credential.settings';
import { bindingContext, requireCipher, type CipherName } from '../crypto/envelope';
import { KeyUnusable, requireProviderCipher, type KeyProviderName, type KeyProviders } from '../keys/key-provider';
import { keyringDecider, type KeyringCommand, type KeyringState } from './keyring.decider';
import type { KeyOrigin, KeyringEvent } from './keyring.events';
import type { KeyringRepository } from './keyring.repository';

export type ByokInput = { material: Buffer } | { keyRef: string };

export interface KeyringView {
  cipher: CipherName;
  currentVersion: number;
  keys: Array<{ version: number; provider: KeyProviderName; origin: KeyOrigin; state: KeyringRow['keys'][number]['state'] }>;
}

export interface KekRotation {
  keyVersion: number;
  rewrapped: number;
  previousKeyDestroyed: boolean;
}

/** The KEK changed between encrypting and committing (a rotation ran): encrypt again. */
export class KekChanged extends Error {}

export interface KeyringServiceDependencies {
  store: EventStore;
  repo: Pick<KeyringRepository, 'keyring' | 'projection' | 'wrappedUnder' | 'rewrap' | 'countWrappedUnder'>;
  providers: Pick<KeyProviders, 'get'>;
  policy: CredentialAccessPolicy;
  eventContext: EventFactoryContext;
  settings: Pick<CredentialSettings, 'defaultProvider' | 'defaultCipher'>;
  now: Clock;
}

const REWRAP_BATCH = 200;

/**
 * A tenant's key ring (stream `keyring-<tenant>`): KEK versions from a provider or the
 * tenant (BYOK), the cipher, rotation with re-wrapping of every data key (ciphertexts
 * untouched), revocation. Key-provider calls happen outside database transactions.
 */
export class KeyringService {
  private readonly handler: CommandHandler<KeyringState, KeyringCommand, KeyringEvent>;

  constructor(private readonly d: KeyringServiceDependencies) {
    this.handler = new CommandHandler(d.store, keyringDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
  }

  /** `authorization`: the header the caller presented, for the access policy only (an agent's token). */
  async view(principal: Principal, authorization?: string): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'read', authorization });
    const ring = await this.d.repo.keyring(principal.tenantId);
    if (!ring) throw new PalisadeError('not_found', 'key ring not found: it is created with the first secret or by POST /v1/keys');
    return viewOf(ring);
  }

  /** Creates the tenant's key ring: a provider-generated KEK, or the tenant's own (BYOK). */
  async provision(principal: Principal, input: { provider?: KeyProviderName; cipher?: CipherName; byok?: ByokInput }): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    const cipher = input.cipher ?? this.d.settings.defaultCipher;
    requireCipher(cipher);
    const provider = input.provider ?? this.d.settings.defaultProvider;
    requireProviderCipher(provider, cipher);
    const { keyRef, origin } = await this.obtainKey(principal.tenantId, provider, cipher, input.byok);
    try {
      await this.decide(principal.tenantId, this.command(principal, 'provision', { provider, cipher, origin, keyRef }));
    } catch (error) {
      if (origin !== 'referenced') await this.d.providers.get(provider).destroyKey(keyRef).catch(() => undefined);
      throw error;
    }
    return this.view(principal);
  }

  async setCipher(principal: Principal, cipher: CipherName): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    requireCipher(cipher);
    const ring = await this.ensure(principal.tenantId);
    // Refused now, not at the first secret: the current KEK's provider must wrap this cipher.
    requireProviderCipher(ring.keys.find((k) => k.version === ring.currentVersion)!.provider, cipher);
    await this.decide(principal.tenantId, this.command(principal, 'set-cipher', { cipher }));
    return this.view(principal);
  }

  /** New KEK version; every data key is re-wrapped under it (ciphertexts untouched); the old one retired. */
  async rotate(principal: Principal, input: { provider?: KeyProviderName; byok?: ByokInput; reason?: string }): Promise<KekRotation> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    const ring = await this.ensure(principal.tenantId);
    const current = ring.keys.find((k) => k.version === ring.currentVersion)!;
    const provider = input.provider ?? current.provider;
    requireProviderCipher(provider, ring.cipher);
    const { keyRef, origin } = await this.obtainKey(principal.tenantId, provider, ring.cipher, input.byok);
    return this.rotateKek(principal.tenantId, actorOf(principal), { provider, keyRef, origin }, input.reason ?? 'rotation');
  }

  /**
   * Revokes a KEK version: at once, nothing wrapped under it is released any more (the
   * revocation commits before this returns, and every redemption checks it in its own
   * transaction). A key the vault holds (generated or imported) is then destroyed in its
   * provider; a referenced key stays the tenant's to disable on its side.
   */
  async revokeKey(principal: Principal, input: { version: number; reason: string }): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    const ring = await this.d.repo.keyring(principal.tenantId);
    const key = ring?.keys.find((k) => k.version === input.version);
    if (!key) throw new PalisadeError('not_found', `key version ${input.version} not found`);
    const destroy = key.origin !== 'referenced';
    await this.decide(principal.tenantId, this.command(principal, 'revoke', { keyVersion: input.version, destroyed: destroy, reason: input.reason }));
    if (destroy) await this.d.providers.get(key.provider).destroyKey(key.keyRef);
    return this.view(principal);
  }

  /** The tenant's key ring, provisioned with a generated KEK on first use. */
  async ensure(tenantId: string): Promise<KeyringRow> {
    const ring = await this.d.repo.keyring(tenantId);
    if (ring) return ring;
    const provider = this.d.settings.defaultProvider;
    requireProviderCipher(provider, this.d.settings.defaultCipher);
    const { keyRef } = await this.obtainKey(tenantId, provider, this.d.settings.defaultCipher);
    try {
      await this.decide(tenantId, {
        type: 'provision',
        data: { provider, cipher: this.d.settings.defaultCipher, origin: 'generated', keyRef },
        metadata: { tenantId, actor: SYSTEM_ACTOR, now: this.d.now() },
      });
    } catch (error) {
      await this.d.providers.get(provider).destroyKey(keyRef).catch(() => undefined);
      if (!(error instanceof PalisadeError && error.code === 'conflict')) throw error;
    }
    return (await this.d.repo.keyring(tenantId))!;
  }

  /**
   * For a `beforeDecide` hook: share-locks the key ring in `tx` (a KEK rotation waits for
   * the transaction) and throws KekChanged unless `kekVersion` is still the active one.
   */
  async requireCurrentKek(tx: Transaction, tenantId: string, kekVersion: number): Promise<void> {
    const ring = await this.d.repo.keyring(tenantId, tx, true);
    const kek = ring?.keys.find((k) => k.version === kekVersion);
    if (!ring || ring.currentVersion !== kekVersion || kek?.state !== 'active') throw new KekChanged();
  }

  /**
   * After crypto-shredding: a new generated KEK, every remaining data key re-wrapped under
   * it and the previous KEK destroyed, so a backup taken before no longer unwraps. A
   * referenced (BYOK) or revoked current key is left alone: `previousKeyDestroyed: false`.
   */
  async rekeyAfterShredding(tenantId: string, actor: Actor): Promise<KekRotation> {
    const ring = (await this.d.repo.keyring(tenantId))!;
    const current = ring.keys.find((k) => k.version === ring.currentVersion)!;
    if (current.state !== 'active' || current.origin === 'referenced') return { keyVersion: ring.currentVersion, rewrapped: 0, previousKeyDestroyed: false };
    const keyRef = await this.d.providers.get(current.provider).generateKey(`palisade/${tenantId}/kek`, { cipher: ring.cipher });
    return this.rotateKek(tenantId, actor, { provider: current.provider, keyRef, origin: 'generated' }, 'crypto-shredding');
  }

  /** A new KEK for a ring whose cipher is `cipher` (the local provider seals an sm4 ring's KEK with SM4). */
  private async obtainKey(tenantId: string, provider: KeyProviderName, cipher: CipherName, byok?: ByokInput): Promise<{ keyRef: string; origin: KeyOrigin }> {
    const p = this.d.providers.get(provider);
    const label = `palisade/${tenantId}/kek`;
    if (!byok) return { keyRef: await p.generateKey(label, { cipher }), origin: 'generated' };
    if ('material' in byok) {
      try {
        return { keyRef: await p.importKey(label, byok.material, { cipher }), origin: 'imported' };
      } finally {
        byok.material.fill(0);
      }
    }
    if (provider !== 'aws-kms') throw new PalisadeError('validation', `keyRef: referencing a key is supported with aws-kms, not ${provider}; import the key instead`);
    const keyRef = `aws-kms:${byok.keyRef}`;
    await p.verifyReference(keyRef);
    return { keyRef, origin: 'referenced' };
  }

  private async rotateKek(tenantId: string, actor: Actor, next: { provider: KeyProviderName; keyRef: string; origin: KeyOrigin }, reason: string): Promise<KekRotation> {
    const meta = () => ({ tenantId, actor, now: this.d.now() });
    const rotated = await this.decide(tenantId, { type: 'rotate', data: { ...next, reason }, metadata: meta() });
    const toVersion = rotated.state.currentVersion;
    const target = this.d.providers.get(next.provider);
    let rewrapped = 0;
    let previousKeyDestroyed = true;
    for (const old of rotated.state.keys.filter((k) => k.state === 'retiring')) {
      const from = this.d.providers.get(old.provider);
      let unreadable = 0;
      for (;;) {
        const batch = await this.d.repo.wrappedUnder(tenantId, old.version, REWRAP_BATCH);
        const pending = batch.slice(unreadable);
        if (pending.length === 0) break;
        for (const m of pending) {
          const ctx = bindingContext(m, m.cipher);
          let dek: Buffer;
          try {
            dek = await from.unwrap(old.keyRef, m.wrappedDek, ctx);
          } catch (error) {
            if (!(error instanceof KeyUnusable)) throw error;
            unreadable++;
            continue;
          }
          const wrapped = await target.wrap(next.keyRef, dek, ctx);
          dek.fill(0);
          if (await this.d.store.inTransaction((tx) => this.d.repo.rewrap(tx, m, old.version, toVersion, wrapped))) rewrapped++;
        }
        if (batch.length < REWRAP_BATCH) break;
      }
      if (unreadable > 0 || (await this.d.repo.countWrappedUnder(tenantId, old.version)) > 0) {
        previousKeyDestroyed = false;
        continue;
      }
      const destroy = old.origin !== 'referenced';
      if (destroy) await from.destroyKey(old.keyRef);
      else previousKeyDestroyed = false;
      await this.decide(tenantId, { type: 'retire', data: { keyVersion: old.version, destroyed: destroy, rewrapped }, metadata: meta() });
    }
    return { keyVersion: toVersion, rewrapped, previousKeyDestroyed };
  }

  private decide(tenantId: string, command: KeyringCommand) {
    return this.handler.handle(streamName('keyring', tenantId), command);
  }

  private command<T extends KeyringCommand['type']>(principal: Principal, type: T, data: Extract<KeyringCommand, { type: T }>['data']): KeyringCommand {
    return { type, data, metadata: { tenantId: principal.tenantId, actor: actorOf(principal), now: this.d.now() } } as KeyringCommand;
  }
}

function viewOf(ring: KeyringRow): KeyringView {
  return {
    cipher: ring.cipher,
    currentVersion: ring.currentVersion,
    keys: ring.keys.map((k) => ({ version: k.version, provider: k.provider, origin: k.origin, state: k.state })),
  };
}
