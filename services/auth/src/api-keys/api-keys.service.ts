import { PalisadeError, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler } from '@palisade/eventsourcing';
import type { AuthConfig } from '../auth.config';
import type { Transactions } from '../transactions';
import { scopesOf, type TokenIssuer } from '../sessions/token-issuer';
import { effectiveKeyScopes, grantableScopes } from './api-key-scopes';
import { apiKeyIdOf, apiKeySessionId, matchesAny, newApiKeyId, newApiKeySecret } from './api-key-secret';
import type { ApiKeyCommand, ApiKeyState } from './api-keys.decider';
import type { ApiKeyEvent, ApiKeyOwner } from './api-keys.events';
import type { ApiKeyRow, ApiKeysRepository } from './api-keys.repository';

const keyStream = (tenantId: string, keyId: string) => streamName('api-key', `${tenantId}.${keyId}`);
const INVALID = () => new PalisadeError('unauthenticated', 'invalid, expired or revoked API key');

/** Principal id of a tenant service account. */
export const serviceAccountPrincipalId = (name: string) => `sa-${name}`;

export interface CreateApiKeyInput {
  name: string;
  scopes: string[];
  expiresInDays: number;
  /** For a service account of the tenant (administrators only); otherwise the caller's own key. */
  serviceAccount?: string;
}

/**
 * API keys bound to a user or a tenant service account, with scopes never beyond the
 * owner's, an expiry, rotation with an overlap window, revocation (enforced by every
 * service like other revocations) and the time of last use.
 */
export class ApiKeysService {
  constructor(
    private readonly transactions: Transactions,
    private readonly apiKeyCommands: CommandHandler<ApiKeyState, ApiKeyCommand, ApiKeyEvent>,
    private readonly apiKeysRepo: Pick<ApiKeysRepository, 'addSecret' | 'list' | 'credentials' | 'touch' | 'find'>,
    private readonly issuer: Pick<TokenIssuer, 'issue'>,
    private readonly config: Pick<AuthConfig, 'AUTH_OPERATOR_TENANT'>,
  ) {}

  async create(caller: Principal, input: CreateApiKeyInput, now = new Date()) {
    const callerScopes = caller.scopes ?? [];
    let owner: ApiKeyOwner;
    if (input.serviceAccount !== undefined) {
      if (!callerScopes.includes('auth:admin')) throw new PalisadeError('forbidden', 'scope auth:admin is required for service account keys');
      if (caller.type !== 'user') throw new PalisadeError('forbidden', 'a service account key is made by an administrator (a user), who sponsors it');
      owner = { type: 'service-account', id: input.serviceAccount, sponsor: caller.id };
    } else {
      if (caller.type !== 'user') throw new PalisadeError('forbidden', 'only users own API keys (or name a serviceAccount)');
      owner = { type: 'user', id: caller.id };
    }
    // The caller's own scopes bound the key, whoever owns it; provisioning tenants is
    // left to a signed-in person, never to a long-lived bearer secret (grantableScopes).
    return this.createFor(caller, owner, input, grantableScopes(owner, callerScopes), now);
  }

  /**
   * A key for `owner` with at most `grantable` (what the caller and the person the key will
   * answer to may put on it): for the caller's own, a service account's, or (through the
   * agent registry, which checks who may) an agent's.
   */
  async createFor(caller: Principal, owner: ApiKeyOwner, input: Omit<CreateApiKeyInput, 'serviceAccount'>, grantable: readonly string[], now = new Date()) {
    const keyId = newApiKeyId();
    const secret = newApiKeySecret(keyId);
    const expiresAt = new Date(now.getTime() + input.expiresInDays * 86400_000).toISOString();
    await this.apiKeyCommands.handle(
      keyStream(caller.tenantId, keyId),
      { type: 'CreateApiKey', data: { keyId, owner, name: input.name, scopes: input.scopes, expiresAt, grantable }, metadata: this.meta(caller, now) },
      0,
      (tx) => this.apiKeysRepo.addSecret(tx, keyId, secret.hash, now),
    );
    return { keyId, apiKey: secret.apiKey, owner, scopes: [...new Set(input.scopes)], expiresAt };
  }

  /** The keys of one owner (the agent registry lists an agent's). */
  async listOf(tenantId: string, owner: ApiKeyOwner) {
    return (await this.transactions.inTransaction((tx) => this.apiKeysRepo.list(tx, tenantId, owner))).map(view);
  }

  async list(caller: Principal) {
    const admin = caller.scopes?.includes('auth:admin') ?? false;
    const rows = await this.transactions.inTransaction((tx) => this.apiKeysRepo.list(tx, caller.tenantId, admin ? undefined : { type: 'user', id: caller.id }));
    return rows.map(view);
  }

  /** A new secret; the previous one keeps working for `overlapSec` (never past the key's expiry). */
  async rotate(caller: Principal, keyId: string, overlapSec: number, now = new Date()) {
    await this.visible(caller, keyId);
    return this.rotateAuthorized(caller, keyId, overlapSec, now);
  }

  /** Rotation once the caller's right to the key is established (by `visible`, or by the agent registry). */
  async rotateAuthorized(caller: Principal, keyId: string, overlapSec: number, now = new Date()) {
    const secret = newApiKeySecret(keyId);
    const result = await this.apiKeyCommands.handle(
      keyStream(caller.tenantId, keyId),
      { type: 'RotateApiKey', data: { keyId, overlapSec }, metadata: this.meta(caller, now) },
      undefined,
      (tx) => this.apiKeysRepo.addSecret(tx, keyId, secret.hash, now),
    );
    const rotated = result.events[0].data as { previousSecretValidUntil: string };
    return { keyId, apiKey: secret.apiKey, previousSecretValidUntil: rotated.previousSecretValidUntil };
  }

  /** Refused at once here, and by every service within a second (auth.revocation.issued). */
  async revoke(caller: Principal, keyId: string, now = new Date()): Promise<void> {
    const key = await this.visible(caller, keyId);
    await this.revokeAuthorized(caller, key, now);
  }

  /** Revocation once the caller's right to the key is established. */
  async revokeAuthorized(caller: Principal, key: Pick<ApiKeyRow, 'keyId' | 'owner'>, now = new Date()): Promise<void> {
    const keyId = key.keyId;
    const reason = key.owner.type === 'user' && key.owner.id === caller.id ? 'owner' : 'admin';
    await this.apiKeyCommands.handle(keyStream(caller.tenantId, keyId), { type: 'RevokeApiKey', data: { keyId, reason }, metadata: this.meta(caller, now) });
  }

  /**
   * The principal an API key stands for: its owner, with the key's scopes narrowed to
   * what the person it answers to (its user, or a service account's sponsor) holds now.
   * Refused when malformed, unknown, wrong, expired, revoked, or when that person is
   * disabled or gone.
   */
  async verify(apiKey: string, now = new Date()): Promise<{ principal: Principal; keyId: string; expiresAt: Date; owner: ApiKeyOwner }> {
    const keyId = apiKeyIdOf(apiKey);
    if (!keyId) throw new PalisadeError('unauthenticated', 'not an API key (palisade_<id>_<secret>)');
    const key = await this.transactions.inTransaction((tx) => this.apiKeysRepo.credentials(tx, keyId, now));
    // The digest comparison runs even for an unknown key, so timing tells nothing.
    const matches = matchesAny(apiKey, key?.secretHashes ?? []);
    if (!key || !matches || key.status !== 'active' || key.expiresAt.getTime() <= now.getTime()) throw INVALID();
    const held = key.ownerRoles ? scopesOf(key.ownerRoles, key.tenantId === this.config.AUTH_OPERATOR_TENANT) : undefined;
    const scopes = effectiveKeyScopes(key, held);
    if (!scopes) throw INVALID();
    let principal: Principal;
    if (key.owner.type === 'user') principal = { type: 'user', id: key.owner.id, tenantId: key.tenantId, scopes, sessionId: apiKeySessionId(keyId) };
    else if (key.owner.type === 'service-account') principal = { type: 'agent', id: serviceAccountPrincipalId(key.owner.id), tenantId: key.tenantId, scopes, sessionId: apiKeySessionId(keyId) };
    else {
      // A registered agent: only while it (and its parent, if any) is active; it acts for its owner.
      const agent = key.agent;
      if (!agent || agent.status !== 'active' || (agent.parentStatus !== null && agent.parentStatus !== 'active')) throw INVALID();
      principal = { type: 'agent', id: key.owner.id, tenantId: key.tenantId, actingFor: agent.ownerId, scopes, sessionId: apiKeySessionId(keyId), teams: [agent.teamId], department: agent.teamId };
    }
    await this.transactions.inTransaction((tx) => this.apiKeysRepo.touch(tx, keyId, now));
    return { principal, keyId, expiresAt: key.expiresAt, owner: key.owner };
  }

  /** A short-lived access token for an API key (never outliving the key), revoked with it. */
  async exchange(apiKey: string, audience: readonly string[], now = new Date()) {
    const { principal, expiresAt, owner } = await this.verify(apiKey, now);
    // Every agent token names the user it acts for and is recorded: the agent registry issues it.
    if (owner.type === 'agent') throw new PalisadeError('unauthenticated', 'an agent key is exchanged at POST /v1/tokens/agent');
    const { accessToken, expiresIn } = await this.issuer.issue(
      {
        tenantId: principal.tenantId,
        subject: principal.id,
        principalType: principal.type,
        audience,
        scopes: principal.scopes ?? [],
        sessionId: principal.sessionId,
        notAfterMs: expiresAt.getTime(),
      },
      now.getTime(),
    );
    return { tokenType: 'Bearer' as const, accessToken, expiresIn };
  }

  /** The key, if the caller may manage it: its owner, or an administrator of its tenant; anyone else gets 404. */
  async visible(caller: Principal, keyId: string): Promise<ApiKeyRow> {
    const key = await this.transactions.inTransaction((tx) => this.apiKeysRepo.find(tx, caller.tenantId, keyId));
    const mine = key?.owner.type === 'user' && key.owner.id === caller.id;
    if (!key || !(mine || caller.scopes?.includes('auth:admin'))) throw new PalisadeError('not_found', 'API key not found');
    return key;
  }

  private meta(caller: Principal, now: Date) {
    return { tenantId: caller.tenantId, actor: { type: caller.type, id: caller.id }, now };
  }
}

function view(k: ApiKeyRow) {
  return {
    keyId: k.keyId,
    name: k.name,
    owner: k.owner,
    scopes: k.scopes,
    status: k.status,
    expiresAt: k.expiresAt.toISOString(),
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  };
}
