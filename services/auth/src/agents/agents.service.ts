import { createHash, randomUUID } from 'node:crypto';
import { PalisadeError, type Actor, type Principal } from '@palisade/contracts';
import { streamName, type CommandHandler } from '@palisade/eventsourcing';
import type { AuthConfig } from '../auth.config';
import type { Transactions } from '../transactions';
import type { ApiKeysRepository } from '../api-keys/api-keys.repository';
import type { TeamsRepository } from '../teams/teams.repository';
import type { UsersRepository } from '../users/users.repository';
import { grantableScopes } from '../api-keys/api-key-scopes';
import type { ApiKeysService, CreateApiKeyInput } from '../api-keys/api-keys.service';
import type { ApiKeyOwner } from '../api-keys/api-keys.events';
import { AGENTS_MANAGE_SCOPE, scopesOf, type TokenIssuer } from '../sessions/token-issuer';
import { requireScope } from '../validation';
import type { AgentCommand, AgentGuideCommand, AgentGuideState, AgentState } from './agents.decider';
import type { AgentEvent, AgentGuideEvent, AgentStopCause } from './agents.events';
import type { AgentRow, AgentsRepository } from './agents.repository';

const agentStream = (tenantId: string, agentId: string) => streamName('agent', `${tenantId}.${agentId}`);
const guideStream = (tenantId: string, agentId: string) => streamName('agent-guide', `${tenantId}.${agentId}`);
const INVALID = () => new PalisadeError('unauthenticated', 'invalid, expired or revoked agent key');
const NOT_FOUND = () => new PalisadeError('not_found', 'agent not found');

export interface RegisterAgentInput {
  name: string;
  teamId?: string;
  /** Administrators may register an agent for another user; anyone else owns what they register. */
  ownerId?: string;
  parentAgentId?: string;
}

/**
 * The agent registry: agents registered by people (their owners, or the tenant's
 * administrators) in a team, with one level of subagents; suspended, resumed, retired;
 * their keys (API keys owned by the agent, at most the owner's non-administrative scopes)
 * exchanged for short-lived agent tokens that act for the owner; their guide. Agents
 * themselves administer nothing: every route here is for people (`Administers`), except
 * the exchange and the agent's own reads (`/v1/me/agent`).
 */
export class AgentsService {
  constructor(
    private readonly transactions: Transactions,
    private readonly agentCommands: CommandHandler<AgentState, AgentCommand, AgentEvent>,
    private readonly guideCommands: CommandHandler<AgentGuideState, AgentGuideCommand, AgentGuideEvent>,
    private readonly agentsRepo: Pick<AgentsRepository, 'find' | 'list' | 'children' | 'guide' | 'storeGuide'>,
    private readonly teamsRepo: Pick<TeamsRepository, 'find' | 'teamsOf'>,
    private readonly usersRepo: Pick<UsersRepository, 'findById'>,
    private readonly apiKeysRepo: Pick<ApiKeysRepository, 'find'>,
    private readonly issuer: Pick<TokenIssuer, 'issue' | 'ttlSec'>,
    private readonly config: Pick<AuthConfig, 'AUTH_OPERATOR_TENANT'>,
    private readonly keys: Pick<ApiKeysService, 'createFor' | 'listOf' | 'rotateAuthorized' | 'revokeAuthorized' | 'verify'>,
  ) {}

  async register(caller: Principal, input: RegisterAgentInput, now = new Date()) {
    requireScope(caller, AGENTS_MANAGE_SCOPE);
    const admin = isAdmin(caller);
    const parent = input.parentAgentId === undefined ? undefined : await this.transactions.inTransaction((tx) => this.agentsRepo.find(tx, caller.tenantId, input.parentAgentId!));
    if (input.parentAgentId !== undefined && (!parent || !(admin || parent.ownerId === caller.id))) throw NOT_FOUND();
    const ownerId = parent?.ownerId ?? input.ownerId ?? caller.id;
    if (ownerId !== caller.id && !admin) throw new PalisadeError('forbidden', 'ownerId: only an administrator registers an agent for another user');
    const teamId = input.teamId ?? parent?.teamId;
    if (!teamId) throw new PalisadeError('validation', 'teamId: required');
    const facts = await this.transactions.inTransaction(async (tx) => {
      const team = await this.teamsRepo.find(tx, caller.tenantId, teamId);
      const owner = await this.usersRepo.findById(tx, caller.tenantId, ownerId);
      const ownerTeams = owner ? await this.teamsRepo.teamsOf(tx, caller.tenantId, ownerId) : [];
      return {
        ...(team ? { team: team.status } : {}),
        ownerActive: owner?.status === 'active',
        ownerInTeam: ownerTeams.includes(teamId),
        ...(parent ? { parent: { status: parent.status, ownerId: parent.ownerId, teamId: parent.teamId, ...(parent.parentAgentId ? { parentAgentId: parent.parentAgentId } : {}) } } : {}),
      };
    });
    const agentId = randomUUID();
    await this.agentCommands.handle(
      agentStream(caller.tenantId, agentId),
      {
        type: 'RegisterAgent',
        data: { agentId, name: input.name, ownerId, teamId, ...(input.parentAgentId ? { parentAgentId: input.parentAgentId } : {}), facts },
        metadata: meta(caller, now),
      },
      0,
    );
    return view(await this.find(caller.tenantId, agentId));
  }

  async list(caller: Principal) {
    requireScope(caller, AGENTS_MANAGE_SCOPE);
    const rows = await this.transactions.inTransaction((tx) => this.agentsRepo.list(tx, caller.tenantId, isAdmin(caller) ? undefined : caller.id));
    return rows.map(view);
  }

  async get(caller: Principal, agentId: string) {
    return view(await this.manageable(caller, agentId));
  }

  async suspend(caller: Principal, agentId: string) {
    await this.manageable(caller, agentId);
    await this.stop(caller, agentId, 'SuspendAgent', 'person');
  }

  async retire(caller: Principal, agentId: string) {
    await this.manageable(caller, agentId);
    await this.stop(caller, agentId, 'RetireAgent', 'person');
  }

  async resume(caller: Principal, agentId: string) {
    const agent = await this.manageable(caller, agentId);
    const parent = agent.parentAgentId ? await this.find(caller.tenantId, agent.parentAgentId) : undefined;
    await this.agentCommands.handle(agentStream(caller.tenantId, agentId), {
      type: 'ResumeAgent',
      data: { agentId, ...(parent ? { parentStatus: parent.status } : {}) },
      metadata: meta(caller, new Date()),
    });
  }

  /** A key for the agent: at most its owner's non-administrative scopes, and the caller's. */
  async createKey(caller: Principal, agentId: string, input: Omit<CreateApiKeyInput, 'serviceAccount'>) {
    const agent = await this.manageable(caller, agentId);
    if (agent.status === 'retired') throw new PalisadeError('conflict', 'agent is retired');
    const owner: ApiKeyOwner = { type: 'agent', id: agentId };
    const ownerScopes = await this.ownerScopes(caller.tenantId, agent.ownerId);
    const grantable = grantableScopes(owner, ownerScopes).filter((s) => caller.scopes?.includes(s));
    return this.keys.createFor(caller, owner, input, grantable);
  }

  async listKeys(caller: Principal, agentId: string) {
    await this.manageable(caller, agentId);
    return this.keys.listOf(caller.tenantId, { type: 'agent', id: agentId });
  }

  async rotateKey(caller: Principal, agentId: string, keyId: string, overlapSec: number) {
    await this.keyOf(caller, agentId, keyId);
    return this.keys.rotateAuthorized(caller, keyId, overlapSec);
  }

  async revokeKey(caller: Principal, agentId: string, keyId: string) {
    await this.keys.revokeAuthorized(caller, await this.keyOf(caller, agentId, keyId));
  }

  /** The guide and its version (ETag); an empty text at version 0 before anyone wrote one. */
  async guide(caller: Principal, agentId: string) {
    await this.manageable(caller, agentId);
    return this.guideOf(caller.tenantId, agentId);
  }

  /** Replaces the guide (If-Match: the version read); people only, the owner or an administrator. */
  async setGuide(caller: Principal, agentId: string, text: string, ifMatch?: number) {
    const agent = await this.manageable(caller, agentId);
    const now = new Date();
    const r = await this.guideCommands.handle(
      guideStream(caller.tenantId, agentId),
      { type: 'SetAgentGuide', data: { agentId, sha256: createHash('sha256').update(text).digest('hex'), bytes: Buffer.byteLength(text), agentStatus: agent.status }, metadata: meta(caller, now) },
      { ...(ifMatch === undefined ? {} : { expectedVersion: ifMatch }), alsoInTransaction: (tx, events, version) => (events.length ? this.agentsRepo.storeGuide(tx, caller.tenantId, agentId, text, version, now) : Promise.resolve()) },
    );
    return { version: r.version };
  }

  /** The calling agent's own registry entry and guide (an agent reads its rules; it changes nothing). */
  async self(agent: Principal) {
    const row = await this.selfRow(agent);
    return { ...view(row), actingFor: row.ownerId, guide: await this.guideOf(agent.tenantId, row.agentId) };
  }

  /**
   * An agent's key for a short-lived agent token: `ptp: agent`, `sub` the agent, its team,
   * `act: { sub: owner }`, and the key's scopes narrowed to what the owner holds now
   * (never more). Recorded as auth.agent-token.issued (never the token).
   */
  async exchange(apiKey: string, audience: readonly string[], now = new Date()) {
    const { principal, keyId, expiresAt, owner } = await this.keys.verify(apiKey, now);
    if (owner.type !== 'agent' || !principal.actingFor) throw INVALID();
    const agent = await this.find(principal.tenantId, principal.id);
    const parent = agent.parentAgentId ? await this.find(principal.tenantId, agent.parentAgentId) : undefined;
    const jti = randomUUID();
    const exp = Math.min(Math.floor(now.getTime() / 1000) + this.issuer.ttlSec, Math.floor(expiresAt.getTime() / 1000));
    const scopes = [...(principal.scopes ?? [])];
    const aud = [...audience];
    await this.agentCommands
      .handle(agentStream(principal.tenantId, principal.id), {
        type: 'IssueAgentToken',
        data: { agentId: principal.id, keyId, actingFor: principal.actingFor, scopes, audience: aud, jti, issuedAtMs: now.getTime(), expiresAt: new Date(exp * 1000).toISOString(), ...(parent ? { parentStatus: parent.status } : {}) },
        metadata: { tenantId: principal.tenantId, actor: { type: 'agent', id: principal.id }, now },
      })
      .catch((e: unknown) => {
        throw e instanceof PalisadeError && ['unauthenticated', 'not_found'].includes(e.code) ? INVALID() : e;
      });
    // Issued at the decision's instant: a suspension deciding after it revokes this token too.
    const { accessToken, expiresIn } = await this.issuer.issue(
      { tenantId: principal.tenantId, subject: principal.id, principalType: 'agent', audience: aud, scopes, sessionId: principal.sessionId, actingFor: principal.actingFor, teams: [agent.teamId], jti, notAfterMs: expiresAt.getTime() },
      now.getTime(),
    );
    return { tokenType: 'Bearer' as const, accessToken, expiresIn, agentId: principal.id, actingFor: principal.actingFor, teamId: agent.teamId, scopes };
  }

  /** Suspends or retires the agent, then its subagents (a subagent never outlives its parent's standing). */
  private async stop(caller: Principal, agentId: string, type: 'SuspendAgent' | 'RetireAgent', cause: AgentStopCause): Promise<void> {
    const actor: Actor = { type: caller.type, id: caller.id };
    const now = new Date();
    await this.agentCommands.handle(agentStream(caller.tenantId, agentId), { type, data: { agentId, cause }, metadata: { tenantId: caller.tenantId, actor, now } });
    const children = await this.transactions.inTransaction((tx) => this.agentsRepo.children(tx, caller.tenantId, agentId));
    for (const child of children) {
      await this.agentCommands.handle(agentStream(caller.tenantId, child.agentId), { type, data: { agentId: child.agentId, cause: 'parent' }, metadata: { tenantId: caller.tenantId, actor, now } });
    }
  }

  /** The agent, if the caller may manage it: its owner (with agents:manage) or an administrator; anyone else gets 404. */
  private async manageable(caller: Principal, agentId: string): Promise<AgentRow> {
    requireScope(caller, AGENTS_MANAGE_SCOPE);
    const agent = await this.transactions.inTransaction((tx) => this.agentsRepo.find(tx, caller.tenantId, agentId));
    if (!agent || !(agent.ownerId === caller.id || isAdmin(caller))) throw NOT_FOUND();
    return agent;
  }

  private async keyOf(caller: Principal, agentId: string, keyId: string) {
    await this.manageable(caller, agentId);
    const key = await this.transactions.inTransaction((tx) => this.apiKeysRepo.find(tx, caller.tenantId, keyId));
    if (!key || key.owner.type !== 'agent' || key.owner.id !== agentId) throw new PalisadeError('not_found', 'API key not found');
    return key;
  }

  private async selfRow(agent: Principal): Promise<AgentRow> {
    if (agent.type !== 'agent') throw new PalisadeError('forbidden', 'only an agent has an agent entry');
    const row = await this.transactions.inTransaction((tx) => this.agentsRepo.find(tx, agent.tenantId, agent.id));
    if (!row) throw NOT_FOUND();
    return row;
  }

  private async find(tenantId: string, agentId: string): Promise<AgentRow> {
    const row = await this.transactions.inTransaction((tx) => this.agentsRepo.find(tx, tenantId, agentId));
    if (!row) throw NOT_FOUND();
    return row;
  }

  private async guideOf(tenantId: string, agentId: string) {
    const g = await this.transactions.inTransaction((tx) => this.agentsRepo.guide(tx, tenantId, agentId));
    return { text: g?.text ?? '', version: g?.version ?? 0, updatedAt: g?.updatedAt.toISOString() ?? null };
  }

  private async ownerScopes(tenantId: string, ownerId: string): Promise<string[]> {
    const owner = await this.transactions.inTransaction((tx) => this.usersRepo.findById(tx, tenantId, ownerId));
    if (owner?.status !== 'active') throw new PalisadeError('conflict', 'the agent’s owner is disabled');
    return scopesOf(owner.roles, tenantId === this.config.AUTH_OPERATOR_TENANT);
  }
}

const isAdmin = (p: Principal) => p.scopes?.includes('auth:admin') ?? false;
const meta = (p: Principal, now: Date) => ({ tenantId: p.tenantId, actor: { type: p.type, id: p.id } as Actor, now });

function view(a: AgentRow) {
  return {
    agentId: a.agentId,
    name: a.name,
    ownerId: a.ownerId,
    teamId: a.teamId,
    parentAgentId: a.parentAgentId,
    status: a.status,
    createdAt: a.createdAt.toISOString(),
    lastTokenAt: a.lastTokenAt?.toISOString() ?? null,
  };
}
