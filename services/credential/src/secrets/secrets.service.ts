import { PalisadeError, newEventId, type EventEnvelope, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore, type HandleOptions } from '@palisade/eventsourcing';
import { authorize, type CredentialAccessPolicy } from '../access/access-policy';
import type { SecretRow, VersionMaterial } from '../credential.repository';
import { actorOf, MAX_ATTEMPTS, SYSTEM_ACTOR, type Clock, type CredentialSettings } from '../credential.settings';
import type { SecretMaterial } from '../crypto/secret-material';
import { KekChanged, type KekRotation, type KeyringService } from '../keyring/keyring.service';
import type { KeyringRepository } from '../keyring/keyring.repository';
import type { RotatorRegistry } from '../rotation/rotator';
import { secretDecider, type SecretCommand, type SecretState } from './secrets.decider';
import type { SecretEvent } from './secrets.events';
import type { SecretsRepository } from './secrets.repository';

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

export interface NewSecret {
  name: string;
  value: Buffer;
  scopes: string[];
  rotationDays?: number;
  overlapSeconds?: number;
}

export interface SecretsServiceDependencies {
  store: EventStore;
  repo: Pick<SecretsRepository, 'secret' | 'secrets' | 'versions' | 'insertVersion' | 'projection'>;
  keyrings: Pick<KeyringRepository, 'keyring'>;
  keyring: Pick<KeyringService, 'ensure' | 'requireCurrentKek' | 'rekeyAfterShredding'>;
  material: SecretMaterial;
  rotators: Pick<RotatorRegistry, 'get'>;
  policy: CredentialAccessPolicy;
  eventContext: EventFactoryContext;
  settings: Pick<CredentialSettings, 'defaultRotationDays' | 'defaultOverlapSeconds' | 'overdueAfterDays'>;
  now: Clock;
}

/**
 * Secrets of a tenant (stream `secret-<id>`): create, read metadata and history, rotate
 * with overlap, revoke, crypto-shred; values go in, never out (they leave through a
 * lease or, for a service's own secret, a recorded read). Everything crosses the access
 * policy first; encryption and key-provider calls happen before the transaction, which
 * re-checks (share lock) that the KEK used is still the current one.
 */
export class SecretsService {
  private readonly handler: CommandHandler<SecretState, SecretCommand, SecretEvent>;

  constructor(private readonly d: SecretsServiceDependencies) {
    this.handler = new CommandHandler(d.store, secretDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
  }

  async create(principal: Principal, input: NewSecret): Promise<SecretView> {
    await authorize(this.d.policy, { principal, action: 'create' });
    return this.get(principal, await this.store(principal, input));
  }

  /** `authorization` (on the reads, which agents may reach): the header the caller presented, for the access policy only. */
  async get(principal: Principal, secretId: string, authorization?: string): Promise<SecretView> {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'read', secret: row, authorization });
    return viewOf(row);
  }

  async list(principal: Principal, page: { limit: number; after?: string }, authorization?: string): Promise<SecretView[]> {
    await authorize(this.d.policy, { principal, action: 'read', authorization });
    return (await this.d.repo.secrets(principal.tenantId, page.limit, page.after)).map(viewOf);
  }

  /** The secret's lifecycle as recorded (metadata only: events never hold values). */
  async history(principal: Principal, secretId: string, authorization?: string): Promise<EventEnvelope[]> {
    await this.get(principal, secretId, authorization);
    const stream = await this.d.store.inTransaction((tx) => this.d.store.readStream(tx, streamName('secret', secretId)));
    return stream.events.map((e) => e.event).filter((e) => e.tenantId === principal.tenantId);
  }

  /** A new version, from the caller's value or a rotator; the old one overlaps, then retires. */
  async rotate(principal: Principal, secretId: string, input: { value?: Buffer; rotator?: string }, ifMatch?: number): Promise<SecretView> {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'rotate', secret: row });
    await this.storeVersion(principal, row, input, ifMatch);
    return this.get(principal, secretId);
  }

  async revoke(principal: Principal, secretId: string, reason: string, ifMatch?: number): Promise<SecretView> {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'revoke', secret: row });
    await this.decide(secretId, this.command(principal, 'revoke', { reason }), { expectedVersion: ifMatch });
    return this.get(principal, secretId);
  }

  /**
   * Hard delete by crypto-shredding: the wrapped data keys and ciphertexts are deleted,
   * external ciphertexts deleted without recovery, and the tenant's KEK rotated with the
   * previous one destroyed, so that no backup taken before (which still holds the
   * wrapped data key) can be unwrapped any more.
   */
  async shred(principal: Principal, secretId: string, reason: string) {
    const row = await this.d.repo.secret(principal.tenantId, secretId);
    if (!row) throw new PalisadeError('not_found', 'secret not found');
    await authorize(this.d.policy, { principal, action: 'delete', secret: row });
    return this.shredAuthorized(principal, secretId, reason);
  }

  // ---- for the other features (the caller authorized)

  /** Encrypts and records a new secret (version 1). Answers its id. */
  async store(principal: Principal, input: NewSecret): Promise<string> {
    const secretId = newEventId();
    const tenantId = principal.tenantId;
    for (let attempt = 1; ; attempt++) {
      const ring = await this.d.keyring.ensure(tenantId);
      const material = await this.d.material.encrypt({ tenantId, secretId, version: 1 }, ring, input.value);
      try {
        const command = this.command(principal, 'create', {
          secretId,
          name: input.name,
          scopes: input.scopes,
          cipher: material.cipher,
          storage: this.d.material.storageBackend,
          keyVersion: material.kekVersion,
          rotationDays: input.rotationDays ?? this.d.settings.defaultRotationDays,
          overlapSeconds: input.overlapSeconds ?? this.d.settings.defaultOverlapSeconds,
        });
        await this.decide(secretId, command, { expectedVersion: 0, ...this.withMaterial(material) });
        input.value.fill(0);
        return secretId;
      } catch (error) {
        await this.d.material.destroy(material).catch(() => undefined);
        if (isUniqueViolation(error)) throw new PalisadeError('conflict', `name: a secret named ${input.name} already exists`);
        if (!(error instanceof KekChanged) || attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }

  /** Encrypts and records the next version (value given, or from a rotator). Answers the version. */
  async storeVersion(principal: Principal, row: SecretRow, input: { value?: Buffer; rotator?: string }, ifMatch?: number): Promise<number> {
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
      const ring = await this.d.keyring.ensure(principal.tenantId);
      const material = await this.d.material.encrypt({ tenantId: principal.tenantId, secretId, version }, ring, value);
      try {
        const command = this.command(principal, 'rotate', { version, rotator: rotatorName, keyVersion: material.kekVersion });
        await this.decide(secretId, command, { expectedVersion: ifMatch, ...this.withMaterial(material) });
        value.fill(0);
        return version;
      } catch (error) {
        await this.d.material.destroy(material).catch(() => undefined);
        if (isUniqueViolation(error)) throw new PalisadeError('conflict', 'the secret was rotated concurrently');
        if (!(error instanceof KekChanged) || attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }

  /** The current version's value (the caller zeroes it), its version and the KEK version wrapping it. */
  async decryptCurrent(tenantId: string, secretId: string): Promise<{ value: Buffer; version: number; kekVersion: number }> {
    const [row, ring, versions] = await Promise.all([this.d.repo.secret(tenantId, secretId), this.d.keyrings.keyring(tenantId), this.d.repo.versions(tenantId, secretId)]);
    const material = versions.find((v) => v.version === row?.currentVersion);
    const kek = ring?.keys.find((k) => k.version === material?.kekVersion);
    if (!row || !material || !kek) throw new PalisadeError('illegal_state', 'the secret has no readable version');
    if (kek.state === 'revoked' || kek.state === 'retired') throw new PalisadeError('illegal_state', "the tenant's key-encryption key is revoked");
    return { value: await this.d.material.decrypt(material, kek, { tenantId, secretId, version: material.version }), version: material.version, kekVersion: material.kekVersion };
  }

  async shredAuthorized(principal: Principal, secretId: string, reason: string): Promise<{ secretId: string; versionsDestroyed: number[]; keyVersion: number; previousKeyDestroyed: boolean }> {
    const versions = await this.d.repo.versions(principal.tenantId, secretId);
    const result = await this.decide(secretId, this.command(principal, 'shred', { reason }));
    for (const v of versions) await this.d.material.destroy(v);
    const kek: KekRotation = await this.d.keyring.rekeyAfterShredding(principal.tenantId, actorOf(principal));
    const shredded = result.events[0].data as { versionsDestroyed: number[] };
    return { secretId, versionsDestroyed: shredded.versionsDestroyed, keyVersion: kek.keyVersion, previousKeyDestroyed: kek.previousKeyDestroyed };
  }

  /** Scheduler: due / overdue notice for a secret whose rotation date passed. Answers the number of notices. */
  async checkRotation(tenantId: string, secretId: string, now: Date): Promise<number> {
    const cmd: SecretCommand = { type: 'check-rotation', data: { overdueAfterDays: this.d.settings.overdueAfterDays }, metadata: { tenantId, actor: SYSTEM_ACTOR, now } };
    return (await this.decide(secretId, cmd)).events.length;
  }

  /** Scheduler: a version past its overlap window is retired (its data key deleted). */
  async retireVersion(tenantId: string, secretId: string, version: number, now: Date): Promise<void> {
    await this.decide(secretId, { type: 'retire-version', data: { version }, metadata: { tenantId, actor: SYSTEM_ACTOR, now } });
  }

  /** The new version's material goes in with its event, while the KEK it is wrapped under is still current (share-locked). */
  private withMaterial(material: VersionMaterial): Pick<HandleOptions, 'beforeDecide' | 'alsoInTransaction'> {
    return {
      beforeDecide: (tx) => this.d.keyring.requireCurrentKek(tx, material.tenantId, material.kekVersion),
      alsoInTransaction: (tx) => this.d.repo.insertVersion(tx, material),
    };
  }

  private decide(secretId: string, command: SecretCommand, options: HandleOptions = {}) {
    return this.handler.handle(streamName('secret', secretId), command, options);
  }

  private command<T extends SecretCommand['type']>(principal: Principal, type: T, data: Extract<SecretCommand, { type: T }>['data']): SecretCommand {
    return { type, data, metadata: { tenantId: principal.tenantId, actor: actorOf(principal), now: this.d.now() } } as SecretCommand;
  }
}

function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === '23505' || (error as { driverError?: { code?: string } }).driverError?.code === '23505';
}

function viewOf(row: SecretRow): SecretView {
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
