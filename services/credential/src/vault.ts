import { createHash, randomBytes } from 'node:crypto';
import {
  ConcurrencyError,
  PalisadeError,
  buildEvent,
  newEventId,
  type Actor,
  type EventEnvelope,
  type EventFactoryContext,
  type Principal,
  type ServiceName,
} from '@palisade/contracts';
import { foldEvents, streamName, toDomainEvent, type Command, type Decider, type DomainEvent, type EventStore, type Transaction } from '@palisade/eventsourcing';
import { authorize, type CredentialAccessPolicy } from './access/access-policy';
import { GroupCommit } from './group-commit';
import { bindingContext, newDataKey, open, requireCipher, seal, type CipherName, type SecretBinding } from './crypto/envelope';
import { KeyUnusable, type KeyProviderName, type KeyProviders } from './keys/key-provider';
import { keyringDecider, type KeyringCommand } from './keyring/keyring.decider';
import type { KeyOrigin, KeyringEvent } from './keyring/keyring.events';
import type { RotatorRegistry } from './rotation/rotator';
import { secretDecider, type SecretCommand } from './secrets/secrets.decider';
import { decidePut, decideRead } from './service-secrets/service-secrets.policy';
import type { LeaseGranted, SecretEvent, SecretRead } from './secrets/secrets.events';
import type { CiphertextStore, StoredCiphertext } from './storage/ciphertext-store';
import type { KekRow, LeaseGrantWrite, LeaseRedeemWrite, RedemptionRow, SecretRow, VaultRepository, VersionMaterial } from './vault.repository';

export interface VaultSettings {
  defaultProvider: KeyProviderName;
  defaultCipher: CipherName;
  defaultRotationDays: number;
  defaultOverlapSeconds: number;
  /** A due rotation becomes overdue this many days after its date. */
  overdueAfterDays: number;
  leaseDefaultTtlSeconds: number;
  /** Hard ceiling: 60 s. */
  leaseMaxTtlSeconds: number;
  leaseMaxUses: number;
}

/** The documented defaults (README, Configuration). */
export const DEFAULT_VAULT_SETTINGS: VaultSettings = {
  defaultProvider: 'local',
  defaultCipher: 'aes-256-gcm',
  defaultRotationDays: 90,
  defaultOverlapSeconds: 86400,
  overdueAfterDays: 7,
  leaseDefaultTtlSeconds: 30,
  leaseMaxTtlSeconds: 60,
  leaseMaxUses: 10,
};

export interface VaultDependencies {
  store: EventStore;
  repo: VaultRepository;
  providers: KeyProviders;
  storage: CiphertextStore;
  policy: CredentialAccessPolicy;
  rotators: RotatorRegistry;
  eventContext: EventFactoryContext;
  settings: VaultSettings;
  clock?: () => Date;
  /** Concurrent group-commit transactions for lease grants and redemptions. */
  commitLanes?: number;
}

export type ByokInput = { material: Buffer } | { keyRef: string };

export interface SecretView {
  id: string;
  name: string;
  scopes: string[];
  state: SecretRow['state'];
  version: number;
  storage: string;
  rotationDays: number;
  overlapSeconds: number;
  nextRotationAt: string;
  rotationState: SecretRow['rotationState'];
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  etag: number;
}

export interface KeyringView {
  cipher: CipherName;
  currentVersion: number;
  keys: Array<{ version: number; provider: KeyProviderName; origin: KeyOrigin; state: KekRow['state'] }>;
}

export interface LeaseGrant {
  leaseId: string;
  token: string;
  secretId: string;
  sessionId: string;
  tool: string;
  uses: number;
  expiresAt: string;
}

export interface Redemption {
  leaseId: string;
  secretId: string;
  version: number;
  value: string;
}

const LEASE_TOKEN = /^pl_[A-Za-z0-9_-]{43}$/;
const MAX_TX_ATTEMPTS = 4;
const LEASE_PURGE_AFTER_MS = 10 * 60_000;

export const actorOf = (p: Principal): Actor => ({ type: p.type, id: p.id });
const SYSTEM_ACTOR: Actor = { type: 'system', id: 'credential-scheduler' };
/** A service acting on its own secrets (admitted by client certificate, scope-checked by the service-secrets policy). */
const servicePrincipal = (caller: ServiceName, tenantId: string): Principal => ({ type: 'service', id: caller, tenantId });

/**
 * The credential vault's application service. Everything crosses the access policy
 * first; ids, tenants and actors come from the authenticated principal; key-provider
 * and storage calls (network) happen outside database transactions; each state change
 * commits with its events (the outbox) and read models in one transaction.
 */
export class Vault {
  private readonly now: () => Date;

  /** Lease grants and redemptions, group-committed (one statement, one commit per group). */
  private readonly leaseGrants: GroupCommit<LeaseGrantWrite, void>;
  private readonly leaseRedemptions: GroupCommit<LeaseRedeemWrite, number | undefined>;

  /** The reads on the lease path, grouped the same way (one query per group). */
  private readonly leaseSecrets: GroupCommit<{ tenantId: string; secretId: string }, SecretRow | undefined>;
  private readonly leaseLookups: GroupCommit<Buffer, RedemptionRow | undefined>;

  constructor(private readonly d: VaultDependencies) {
    this.now = d.clock ?? (() => new Date());
    this.leaseGrants = new GroupCommit({ commit: (grants) => d.repo.commitGrants(grants), lanes: d.commitLanes ?? 2 });
    this.leaseRedemptions = new GroupCommit({ commit: (redeems) => d.repo.commitRedemptions(redeems), keyOf: (w) => w.leaseId, lanes: d.commitLanes ?? 2 });
    this.leaseSecrets = new GroupCommit({ commit: (keys) => d.repo.secretsByKey(keys), lanes: 2 });
    this.leaseLookups = new GroupCommit({ commit: (hashes) => d.repo.redemptions(hashes), lanes: 2 });
  }

  get settings(): VaultSettings {
    return this.d.settings;
  }

  // ------------------------------------------------------------------ key ring

  async keyring(principal: Principal): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'read' });
    const ring = await this.d.repo.keyring(principal.tenantId);
    if (!ring) throw new PalisadeError('not_found', 'key ring not found: it is created with the first secret or by POST /v1/keys');
    return viewOfKeyring(ring);
  }

  /** Creates the tenant's key ring: a provider-generated KEK, or the tenant's own (BYOK). */
  async provisionKeyring(principal: Principal, input: { provider?: KeyProviderName; cipher?: CipherName; byok?: ByokInput }): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    const cipher = input.cipher ?? this.d.settings.defaultCipher;
    requireCipher(cipher);
    const provider = input.provider ?? this.d.settings.defaultProvider;
    const { keyRef, origin } = await this.obtainKey(principal.tenantId, provider, input.byok);
    try {
      await this.transact(streamName('keyring', principal.tenantId), keyringDecider, this.command<KeyringCommand>(principal, 'provision', { provider, cipher, origin, keyRef }), {
        project: (tx, events) => this.d.repo.applyKeyringEvents(tx, events),
      });
    } catch (error) {
      if (origin !== 'referenced') await this.d.providers.get(provider).destroyKey(keyRef).catch(() => undefined);
      throw error;
    }
    return this.keyring(principal);
  }

  async setCipher(principal: Principal, cipher: CipherName): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    requireCipher(cipher);
    await this.ensureKeyring(principal.tenantId);
    await this.transact(streamName('keyring', principal.tenantId), keyringDecider, this.command<KeyringCommand>(principal, 'set-cipher', { cipher }), {
      project: (tx, events) => this.d.repo.applyKeyringEvents(tx, events),
    });
    return this.keyring(principal);
  }

  /** New KEK version; every data key is re-wrapped under it (ciphertexts untouched); the old one retired. */
  async rotateKeyringKey(principal: Principal, input: { provider?: KeyProviderName; byok?: ByokInput; reason?: string }) {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    const ring = await this.ensureKeyring(principal.tenantId);
    const current = ring.keys.find((k) => k.version === ring.currentVersion)!;
    const provider = input.provider ?? current.provider;
    const { keyRef, origin } = await this.obtainKey(principal.tenantId, provider, input.byok);
    return this.rotateKek(principal.tenantId, actorOf(principal), { provider, keyRef, origin }, input.reason ?? 'rotation');
  }

  /**
   * Revokes a KEK version: at once, nothing wrapped under it is released any more (the
   * revocation commits before this returns, and every redemption checks it in its own
   * transaction). A key the vault holds (generated or imported) is then destroyed in its
   * provider; a referenced key stays the tenant's to disable on its side.
   */
  async revokeKeyringKey(principal: Principal, input: { version: number; reason: string }): Promise<KeyringView> {
    await authorize(this.d.policy, { principal, action: 'manage_keys' });
    const ring = await this.d.repo.keyring(principal.tenantId);
    const key = ring?.keys.find((k) => k.version === input.version);
    if (!key) throw new PalisadeError('not_found', `key version ${input.version} not found`);
    const destroy = key.origin !== 'referenced';
    await this.transact(
      streamName('keyring', principal.tenantId),
      keyringDecider,
      this.command<KeyringCommand>(principal, 'revoke', { keyVersion: input.version, destroyed: destroy, reason: input.reason }),
      { project: (tx, events) => this.d.repo.applyKeyringEvents(tx, events) },
    );
    if (destroy) await this.d.providers.get(key.provider).destroyKey(key.keyRef);
    return this.keyring(principal);
  }

  private async obtainKey(tenantId: string, provider: KeyProviderName, byok?: ByokInput): Promise<{ keyRef: string; origin: KeyOrigin }> {
    const p = this.d.providers.get(provider);
    const label = `palisade/${tenantId}/kek`;
    if (!byok) return { keyRef: await p.generateKey(label), origin: 'generated' };
    if ('material' in byok) {
      try {
        return { keyRef: await p.importKey(label, byok.material), origin: 'imported' };
      } finally {
        byok.material.fill(0);
      }
    }
    if (provider !== 'aws-kms') throw new PalisadeError('validation', `keyRef: referencing a key is supported with aws-kms, not ${provider}; import the key instead`);
    const keyRef = `aws-kms:${byok.keyRef}`;
    await p.verifyReference(keyRef);
    return { keyRef, origin: 'referenced' };
  }

  private async ensureKeyring(tenantId: string) {
    const ring = await this.d.repo.keyring(tenantId);
    if (ring) return ring;
    const provider = this.d.settings.defaultProvider;
    const { keyRef } = await this.obtainKey(tenantId, provider);
    try {
      await this.transact(
        streamName('keyring', tenantId),
        keyringDecider,
        { type: 'provision', data: { provider, cipher: this.d.settings.defaultCipher, origin: 'generated', keyRef }, metadata: { tenantId, actor: SYSTEM_ACTOR, now: this.now() } },
        { project: (tx, events) => this.d.repo.applyKeyringEvents(tx, events) },
      );
    } catch (error) {
      await this.d.providers.get(provider).destroyKey(keyRef).catch(() => undefined);
      if (!(error instanceof PalisadeError && error.code === 'conflict')) throw error;
    }
    return (await this.d.repo.keyring(tenantId))!;
  }

  private async rotateKek(tenantId: string, actor: Actor, next: { provider: KeyProviderName; keyRef: string; origin: KeyOrigin }, reason: string) {
    const stream = streamName('keyring', tenantId);
    const meta = () => ({ tenantId, actor, now: this.now() });
    const rotated = await this.transact(stream, keyringDecider, { type: 'rotate', data: { ...next, reason }, metadata: meta() } as KeyringCommand, {
      project: (tx, events) => this.d.repo.applyKeyringEvents(tx, events),
    });
    const toVersion = rotated.state.currentVersion;
    const target = this.d.providers.get(next.provider);
    let rewrapped = 0;
    let previousKeyDestroyed = true;
    for (const old of rotated.state.keys.filter((k) => k.state === 'retiring')) {
      const from = this.d.providers.get(old.provider);
      let unreadable = 0;
      for (;;) {
        const batch = await this.d.repo.wrappedUnder(tenantId, old.version, 200);
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
        if (batch.length < 200) break;
      }
      if (unreadable > 0 || (await this.d.repo.countWrappedUnder(tenantId, old.version)) > 0) {
        previousKeyDestroyed = false;
        continue;
      }
      const destroy = old.origin !== 'referenced';
      if (destroy) await from.destroyKey(old.keyRef);
      else previousKeyDestroyed = false;
      await this.transact(stream, keyringDecider, { type: 'retire', data: { keyVersion: old.version, destroyed: destroy, rewrapped }, metadata: meta() } as KeyringCommand, {
        project: (tx, events) => this.d.repo.applyKeyringEvents(tx, events),
      });
    }
    return { keyVersion: toVersion, rewrapped, previousKeyDestroyed };
  }

  // ------------------------------------------------------------------ secrets

  async createSecret(
    principal: Principal,
    input: { name: string; value: Buffer; scopes: string[]; rotationDays?: number; overlapSeconds?: number },
  ): Promise<SecretView> {
    await authorize(this.d.policy, { principal, action: 'create' });
    return this.getSecret(principal, await this.storeSecret(principal, input));
  }

  /** Encrypts and records a new secret (version 1); the caller was authorized. Answers its id. */
  private async storeSecret(principal: Principal, input: { name: string; value: Buffer; scopes: string[]; rotationDays?: number; overlapSeconds?: number }): Promise<string> {
    const secretId = newEventId();
    const tenantId = principal.tenantId;
    for (let attempt = 1; ; attempt++) {
      const ring = await this.ensureKeyring(tenantId);
      const prepared = await this.encryptVersion({ tenantId, secretId, version: 1 }, ring, input.value);
      try {
        await this.transact(
          streamName('secret', secretId),
          secretDecider,
          this.command<SecretCommand>(principal, 'create', {
            secretId,
            name: input.name,
            scopes: input.scopes,
            cipher: prepared.material.cipher,
            storage: this.d.storage.backend,
            keyVersion: prepared.material.kekVersion,
            rotationDays: input.rotationDays ?? this.d.settings.defaultRotationDays,
            overlapSeconds: input.overlapSeconds ?? this.d.settings.defaultOverlapSeconds,
          }),
          {
            expectedVersion: 0,
            before: (tx) => this.requireCurrentKek(tx, tenantId, prepared.material.kekVersion),
            project: async (tx, events, version) => {
              await this.d.repo.applySecretEvents(tx, version, events);
              await this.d.repo.insertVersion(tx, prepared.material);
            },
          },
        );
        input.value.fill(0);
        return secretId;
      } catch (error) {
        await this.d.storage.destroy(prepared.material.stored).catch(() => undefined);
        if (isUniqueViolation(error)) throw new PalisadeError('conflict', `name: a secret named ${input.name} already exists`);
        if (!(error instanceof KekChanged) || attempt >= MAX_TX_ATTEMPTS) throw error;
      }
    }
  }

  async getSecret(principal: Principal, secretId: string): Promise<SecretView> {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'read', secret: row });
    return viewOfSecret(row);
  }

  async listSecrets(principal: Principal, page: { limit: number; after?: string }): Promise<SecretView[]> {
    await authorize(this.d.policy, { principal, action: 'read' });
    return (await this.d.repo.secrets(principal.tenantId, page.limit, page.after)).map(viewOfSecret);
  }

  /** The secret's lifecycle as recorded (metadata only: events never hold values). */
  async history(principal: Principal, secretId: string): Promise<EventEnvelope[]> {
    await this.getSecret(principal, secretId);
    const stream = await this.d.store.inTransaction((tx) => this.d.store.readStream(tx, streamName('secret', secretId)));
    return stream.events.map((e) => e.event).filter((e) => e.tenantId === principal.tenantId);
  }

  /** A new version, from the caller's value or a rotator; the old one overlaps, then retires. */
  async rotateSecret(principal: Principal, secretId: string, input: { value?: Buffer; rotator?: string }, ifMatch?: number): Promise<SecretView> {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'rotate', secret: row });
    await this.storeVersion(principal, row, input, ifMatch);
    return this.getSecret(principal, secretId);
  }

  /** Encrypts and records the next version; the caller was authorized. Answers the version. */
  private async storeVersion(principal: Principal, row: SecretRow, input: { value?: Buffer; rotator?: string }, ifMatch?: number): Promise<number> {
    const secretId = row.secretId;
    if (row.state !== 'active') throw new PalisadeError('illegal_state', 'a revoked secret cannot be rotated');
    let value = input.value;
    const rotatorName = input.rotator ?? 'manual';
    if (!value) {
      const rotator = this.d.rotators.get(rotatorName);
      const current = await this.decryptCurrent(principal.tenantId, secretId);
      try {
        value = await rotator.rotate({ tenantId: principal.tenantId, secretId, name: row.name, current: current.value });
      } finally {
        current.value.fill(0);
      }
    }
    const version = row.currentVersion + 1;
    for (let attempt = 1; ; attempt++) {
      const ring = await this.ensureKeyring(principal.tenantId);
      const prepared = await this.encryptVersion({ tenantId: principal.tenantId, secretId, version }, ring, value);
      try {
        await this.transact(
          streamName('secret', secretId),
          secretDecider,
          this.command<SecretCommand>(principal, 'rotate', { version, rotator: rotatorName, keyVersion: prepared.material.kekVersion }),
          {
            expectedVersion: ifMatch,
            before: (tx) => this.requireCurrentKek(tx, principal.tenantId, prepared.material.kekVersion),
            project: async (tx, events, streamVersion) => {
              await this.d.repo.insertVersion(tx, prepared.material);
              await this.d.repo.applySecretEvents(tx, streamVersion, events);
            },
          },
        );
        value.fill(0);
        return version;
      } catch (error) {
        await this.d.storage.destroy(prepared.material.stored).catch(() => undefined);
        if (isUniqueViolation(error)) throw new PalisadeError('conflict', 'the secret was rotated concurrently');
        if (!(error instanceof KekChanged) || attempt >= MAX_TX_ATTEMPTS) throw error;
      }
    }
  }

  async revokeSecret(principal: Principal, secretId: string, reason: string, ifMatch?: number): Promise<SecretView> {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'revoke', secret: row });
    await this.transact(streamName('secret', secretId), secretDecider, this.command<SecretCommand>(principal, 'revoke', { reason }), {
      expectedVersion: ifMatch,
      project: (tx, events, version) => this.d.repo.applySecretEvents(tx, version, events),
    });
    return this.getSecret(principal, secretId);
  }

  /**
   * Hard delete by crypto-shredding: the wrapped data keys and ciphertexts are deleted,
   * external ciphertexts deleted without recovery, and the tenant's KEK rotated with the
   * previous one destroyed, so that no backup taken before (which still holds the
   * wrapped data key) can be unwrapped any more.
   */
  async shredSecret(principal: Principal, secretId: string, reason: string) {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'delete', secret: row });
    return this.shred(principal, secretId, reason);
  }

  private async shred(principal: Principal, secretId: string, reason: string) {
    const versions = await this.d.repo.versions(principal.tenantId, secretId);
    const result = await this.transact(streamName('secret', secretId), secretDecider, this.command<SecretCommand>(principal, 'shred', { reason }), {
      project: (tx, events, version) => this.d.repo.applySecretEvents(tx, version, events),
    });
    for (const v of versions) await this.d.storage.destroy(v.stored);
    const ring = (await this.d.repo.keyring(principal.tenantId))!;
    const current = ring.keys.find((k) => k.version === ring.currentVersion)!;
    let kek = { keyVersion: ring.currentVersion, rewrapped: 0, previousKeyDestroyed: false };
    if (current.state === 'active' && current.origin !== 'referenced') {
      const keyRef = await this.d.providers.get(current.provider).generateKey(`palisade/${principal.tenantId}/kek`);
      kek = await this.rotateKek(principal.tenantId, actorOf(principal), { provider: current.provider, keyRef, origin: 'generated' }, 'crypto-shredding');
    }
    const shredded = result.events[0].data as { versionsDestroyed: number[] };
    return { secretId, versionsDestroyed: shredded.versionsDestroyed, keyVersion: kek.keyVersion, previousKeyDestroyed: kek.previousKeyDestroyed };
  }

  // ------------------------------------------------------------------ leases

  async grantLease(principal: Principal, input: { secretId: string; sessionId: string; tool: string; ttlSeconds?: number; uses?: number }): Promise<LeaseGrant> {
    const row = await this.leaseSecrets.run({ tenantId: principal.tenantId, secretId: input.secretId });
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'use', secret: row, tool: input.tool });
    if (row.state !== 'active') throw new PalisadeError('illegal_state', 'the secret is revoked');
    const ttl = input.ttlSeconds ?? this.d.settings.leaseDefaultTtlSeconds;
    if (ttl > this.d.settings.leaseMaxTtlSeconds) throw new PalisadeError('validation', `ttlSeconds: at most ${this.d.settings.leaseMaxTtlSeconds}`);
    const uses = input.uses ?? 1;
    if (uses > this.d.settings.leaseMaxUses) throw new PalisadeError('validation', `uses: at most ${this.d.settings.leaseMaxUses}`);
    const now = this.now();
    const leaseId = newEventId();
    const token = `pl_${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(now.getTime() + ttl * 1000);
    const event = buildEvent<LeaseGranted['type'], LeaseGranted['data']>(this.context(now), {
      type: 'credential.lease.granted',
      tenantId: principal.tenantId,
      actor: actorOf(principal),
      data: { leaseId, secretId: input.secretId, sessionId: input.sessionId, tool: input.tool, expiresAt: expiresAt.toISOString(), uses },
    });
    await this.leaseGrants.run({
      event,
      lease: {
        leaseId,
        tokenHash: hashToken(token),
        tenantId: principal.tenantId,
        secretId: input.secretId,
        sessionId: input.sessionId,
        tool: input.tool,
        expiresAt,
        uses,
        usesLeft: uses,
        grantedBy: `${principal.type}:${principal.id}`,
        createdAt: now,
      },
    });
    return { leaseId, token, secretId: input.secretId, sessionId: input.sessionId, tool: input.tool, uses, expiresAt: expiresAt.toISOString() };
  }

  /**
   * Redeems a lease for the service that runs the tool. The value is released only after
   * the `credential.secret.read` event committed, in the same transaction that took the
   * lease's use; a lease for another tenant, session or tool is not found.
   */
  async redeemLease(caller: ServiceName, input: { token: string; tenantId: string; sessionId: string; tool: string }): Promise<Redemption> {
    if (!LEASE_TOKEN.test(input.token)) throw new PalisadeError('validation', 'token: not a lease token');
    const now = this.now();
    const row = await this.leaseLookups.run(hashToken(input.token));
    if (!row || row.tenantId !== input.tenantId || row.sessionId !== input.sessionId || row.tool !== input.tool) {
      throw new PalisadeError('not_found', 'lease not found');
    }
    if (row.expiresAt.getTime() <= now.getTime()) throw new PalisadeError('illegal_state', 'lease expired');
    if (row.usesLeft <= 0) throw new PalisadeError('illegal_state', 'lease already used');
    if (row.secretState !== 'active') throw new PalisadeError('illegal_state', 'the secret is revoked');
    if (!row.material || !row.kek) throw new PalisadeError('illegal_state', 'the secret has no readable version');
    if (row.kek.state === 'revoked' || row.kek.state === 'retired') throw new PalisadeError('illegal_state', "the tenant's key-encryption key is revoked");
    const binding = { tenantId: row.tenantId, secretId: row.secretId, version: row.material.version };
    const value = await this.decrypt(row.material, row.kek, binding);
    const event = buildEvent<SecretRead['type'], SecretRead['data']>(this.context(now), {
      type: 'credential.secret.read',
      tenantId: row.tenantId,
      actor: { type: 'service', id: caller },
      data: { secretId: row.secretId, version: row.material.version, leaseId: row.leaseId, sessionId: row.sessionId, tool: row.tool, consumer: caller },
    });
    const material = row.material;
    let use: number | undefined;
    try {
      use = await this.leaseRedemptions.run({
        leaseId: row.leaseId,
        tenantId: row.tenantId,
        secretId: row.secretId,
        version: material.version,
        kekVersion: material.kekVersion,
        now,
        event,
      });
    } catch (error) {
      value.fill(0);
      throw error;
    }
    if (use === undefined) {
      value.fill(0);
      throw new PalisadeError('illegal_state', 'lease already used or expired, or its secret or key was revoked');
    }
    const text = value.toString('utf8');
    value.fill(0);
    return { leaseId: row.leaseId, secretId: row.secretId, version: material.version, value: text };
  }

  // ------------------------------------------------------------------ service secrets

  /**
   * A Palisade service's own secret (auth: identity-provider client secrets and bind
   * passwords), by name: created under the caller's scope, or rotated when it exists.
   * Events as for any secret, with the service as actor. Answers id and version only.
   */
  async putServiceSecret(caller: ServiceName, tenantId: string, name: string, value: Buffer): Promise<{ secretId: string; version: number }> {
    const principal = servicePrincipal(caller, tenantId);
    try {
      for (let attempt = 1; ; attempt++) {
        const existing = await this.d.repo.secretByName(tenantId, name);
        const decision = decidePut(caller, existing);
        if (decision.do === 'refuse') throw new PalisadeError(decision.code, decision.message);
        try {
          if (decision.do === 'create') return { secretId: await this.storeSecret(principal, { name, value, scopes: [decision.scope], overlapSeconds: 0 }), version: 1 };
          return { secretId: existing!.secretId, version: await this.storeVersion(principal, existing!, { value }) };
        } catch (error) {
          // Two first PUTs of one name raced (or two rotations): decide again on what is there now.
          if (!(error instanceof PalisadeError && error.code === 'conflict') || attempt >= MAX_TX_ATTEMPTS) throw error;
        }
      }
    } finally {
      value.fill(0);
    }
  }

  /**
   * The current value of a service's own secret. As for a lease redemption, the
   * `credential.secret.read` event (consumer, purpose) commits, with the secret active at
   * that version and its KEK usable, before the value is returned.
   */
  async readServiceSecret(caller: ServiceName, tenantId: string, secretId: string, purpose: string): Promise<{ secretId: string; version: number; value: string }> {
    const decision = decideRead(caller, await this.d.repo.secret(tenantId, secretId));
    if (decision.do === 'refuse') throw new PalisadeError(decision.code, decision.message);
    const current = await this.decryptCurrent(tenantId, secretId);
    const event = buildEvent<SecretRead['type'], SecretRead['data']>(this.context(this.now()), {
      type: 'credential.secret.read',
      tenantId,
      actor: { type: 'service', id: caller },
      data: { secretId, version: current.version, consumer: caller, purpose },
    });
    let recorded = false;
    try {
      recorded = await this.d.repo.commitServiceRead({ tenantId, secretId, version: current.version, kekVersion: current.kekVersion, event });
    } finally {
      if (!recorded) current.value.fill(0);
    }
    if (!recorded) throw new PalisadeError('illegal_state', 'the secret was revoked or rotated, or its key revoked, while it was read');
    const value = current.value.toString('utf8');
    current.value.fill(0);
    return { secretId, version: current.version, value };
  }

  /** Hard delete (crypto-shredding) of a service's own secret, e.g. when auth removes an identity provider. */
  async deleteServiceSecret(caller: ServiceName, tenantId: string, secretId: string): Promise<{ secretId: string; versionsDestroyed: number[] }> {
    const decision = decideRead(caller, await this.d.repo.secret(tenantId, secretId));
    if (decision.do === 'refuse' && decision.code === 'not_found') throw new PalisadeError('not_found', decision.message);
    const { versionsDestroyed } = await this.shred(servicePrincipal(caller, tenantId), secretId, `removed by ${caller}`);
    return { secretId, versionsDestroyed };
  }

  // ------------------------------------------------------------------ scheduler

  /** Due / overdue notices, retirement of versions past their overlap, expired leases. */
  async maintain(): Promise<{ notices: number; retired: number; leasesPurged: number }> {
    const now = this.now();
    let notices = 0;
    for (const c of await this.d.repo.rotationCandidates(now, this.d.settings.overdueAfterDays, 500)) {
      const r = await this.transact(
        streamName('secret', c.secretId),
        secretDecider,
        { type: 'check-rotation', data: { overdueAfterDays: this.d.settings.overdueAfterDays }, metadata: { tenantId: c.tenantId, actor: SYSTEM_ACTOR, now } },
        { project: (tx, events, version) => this.d.repo.applySecretEvents(tx, version, events) },
      );
      notices += r.events.length;
    }
    let retired = 0;
    for (const v of await this.d.repo.versionsToRetire(now, 500)) {
      await this.transact(
        streamName('secret', v.secretId),
        secretDecider,
        { type: 'retire-version', data: { version: v.version }, metadata: { tenantId: v.tenantId, actor: SYSTEM_ACTOR, now } },
        { project: (tx, events, version) => this.d.repo.applySecretEvents(tx, version, events) },
      ).then(
        () => retired++,
        (error: unknown) => {
          if (!(error instanceof PalisadeError)) throw error;
        },
      );
    }
    // Expired leases stay a while, so a late redemption hears 'expired' rather than 'not found'.
    const leasesPurged = await this.d.repo.purgeLeases(new Date(now.getTime() - LEASE_PURGE_AFTER_MS));
    return { notices, retired, leasesPurged };
  }

  // ------------------------------------------------------------------ helpers

  private async encryptVersion(binding: SecretBinding, ring: { cipher: CipherName; currentVersion: number; keys: KekRow[] }, value: Buffer) {
    const kek = ring.keys.find((k) => k.version === ring.currentVersion)!;
    if (kek.state === 'revoked') throw new PalisadeError('illegal_state', "the tenant's current key-encryption key is revoked: rotate the key ring first");
    const cipher = ring.cipher;
    const dek = newDataKey(cipher);
    try {
      const sealed = seal(cipher, dek, value, binding);
      const wrappedDek = await this.d.providers.get(kek.provider).wrap(kek.keyRef, dek, bindingContext(binding, cipher));
      const stored: StoredCiphertext = await this.d.storage.put(binding, sealed);
      const material: VersionMaterial = { ...binding, cipher, kekVersion: kek.version, wrappedDek, stored, createdAt: this.now() };
      return { material };
    } finally {
      dek.fill(0);
    }
  }

  private async decrypt(material: VersionMaterial, kek: KekRow, binding: SecretBinding): Promise<Buffer> {
    const sealed = await this.d.storage.get(material.stored);
    const dek = await this.d.providers.get(kek.provider).unwrap(kek.keyRef, material.wrappedDek, bindingContext(binding, material.cipher));
    try {
      return open(sealed, dek, binding);
    } finally {
      dek.fill(0);
    }
  }

  private async decryptCurrent(tenantId: string, secretId: string): Promise<{ value: Buffer; version: number; kekVersion: number }> {
    const [row, ring, versions] = await Promise.all([this.d.repo.secret(tenantId, secretId), this.d.repo.keyring(tenantId), this.d.repo.versions(tenantId, secretId)]);
    const material = versions.find((v) => v.version === row?.currentVersion);
    const kek = ring?.keys.find((k) => k.version === material?.kekVersion);
    if (!row || !material || !kek) throw new PalisadeError('illegal_state', 'the secret has no readable version');
    if (kek.state === 'revoked' || kek.state === 'retired') throw new PalisadeError('illegal_state', "the tenant's key-encryption key is revoked");
    return { value: await this.decrypt(material, kek, { tenantId, secretId, version: material.version }), version: material.version, kekVersion: material.kekVersion };
  }

  private async requireCurrentKek(tx: Transaction, tenantId: string, kekVersion: number): Promise<void> {
    const ring = await this.d.repo.keyring(tenantId, tx, true);
    const kek = ring?.keys.find((k) => k.version === kekVersion);
    if (!ring || ring.currentVersion !== kekVersion || kek?.state !== 'active') throw new KekChanged();
  }

  private command<C extends Command>(principal: Principal, type: C['type'], data: C['data']): C {
    return { type, data, metadata: { tenantId: principal.tenantId, actor: actorOf(principal), now: this.now() } } as C;
  }

  private context(now: Date): EventFactoryContext {
    return { ...this.d.eventContext, now: () => now };
  }

  /**
   * Load, decide, append with the expected version and project in one transaction; on a
   * concurrency conflict decide again, unless the caller named the version (If-Match).
   */
  private async transact<S, C extends Command, E extends DomainEvent>(
    streamId: string,
    decider: Decider<S, C, E>,
    command: C,
    options: {
      expectedVersion?: number;
      before?: (tx: Transaction) => Promise<void>;
      project: (tx: Transaction, events: EventEnvelope[], version: number) => Promise<void>;
    },
  ): Promise<{ state: S; events: EventEnvelope[]; version: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.d.store.inTransaction(async (tx) => {
          await options.before?.(tx);
          const stream = await this.d.store.readStream(tx, streamId);
          if (stream.events.some((e) => e.event.tenantId !== command.metadata.tenantId)) throw new PalisadeError('not_found', 'not found');
          if (options.expectedVersion !== undefined && options.expectedVersion !== stream.version) {
            throw new ConcurrencyError(streamId, options.expectedVersion, stream.version);
          }
          const state = foldEvents(decider, stream.events.map((s) => toDomainEvent<E>(s.event)));
          const decided = decider.decide(command, state);
          const ctx = this.context(command.metadata.now);
          const events = decided.map((e) => buildEvent(ctx, { type: e.type, tenantId: command.metadata.tenantId, actor: command.metadata.actor, data: e.data }));
          const { nextVersion } = await this.d.store.appendToStream(tx, streamId, events, stream.version);
          if (events.length > 0) await options.project(tx, events, nextVersion);
          return { state: decided.reduce((s, e) => decider.evolve(s, e), state), events, version: nextVersion };
        });
      } catch (error) {
        const retry = error instanceof ConcurrencyError && options.expectedVersion === undefined && attempt < MAX_TX_ATTEMPTS;
        if (!retry) throw error;
      }
    }
  }
}

/** The KEK changed between encrypting and committing (a rotation ran): encrypt again. */
class KekChanged extends Error {}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === '23505' || (error as { driverError?: { code?: string } }).driverError?.code === '23505';
}

function viewOfSecret(row: SecretRow): SecretView {
  return {
    id: row.secretId,
    name: row.name,
    scopes: row.scopes,
    state: row.state,
    version: row.currentVersion,
    storage: row.storage,
    rotationDays: row.rotationDays,
    overlapSeconds: row.overlapSeconds,
    nextRotationAt: new Date(row.nextRotationAt).toISOString(),
    rotationState: row.rotationState,
    createdBy: row.createdBy,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
    etag: row.streamVersion,
  };
}

function viewOfKeyring(ring: { cipher: CipherName; currentVersion: number; keys: KekRow[] }): KeyringView {
  return {
    cipher: ring.cipher,
    currentVersion: ring.currentVersion,
    keys: ring.keys.map((k) => ({ version: k.version, provider: k.provider, origin: k.origin, state: k.state })),
  };
}

export type { SecretEvent, KeyringEvent };
