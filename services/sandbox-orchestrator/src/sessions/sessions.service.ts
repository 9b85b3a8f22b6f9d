import { ConcurrencyError, newEventId, PalisadeError, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, streamName, type EventStore } from '@palisade/eventsourcing';
import type { AuthorizeDecision, PolicyClient } from '@palisade/policy-client';
import { askPolicy } from '../policy';
import { sessionDecider, type SessionCommand, type SessionState } from './sessions.decider';
import type { SessionEvent, ShareRole } from './sessions.events';
import type { SessionRow, SessionsRepository } from './sessions.repository';

/** Who asks: the verified principal and, for an agent, its access token as presented here (forwarded to the policy service, which verifies it). */
export interface Caller {
  principal: Principal;
  /** An agent's token, forwarded to the policy service (it takes the agent and its user from it). */
  agentToken?: string;
  /** The bearer token the caller presented (verified by the AuthGuard): an execution's lease grants use it, and nothing else. */
  token?: string;
}

/** Actions on resource type `session` in the policy service (its built-in session roles). */
export type SessionAction = 'create' | 'read' | 'write' | 'share' | 'archive';
export const SESSION_RESOURCE = 'session';

export interface SessionView {
  id: string;
  owner: string;
  collaborators: string[];
  viewers: string[];
  agents: string[];
  status: SessionRow['status'];
  createdAt: string;
  updatedAt: string;
  archivedAt?: string;
  etag: number;
}

export interface SessionsServiceDependencies {
  store: EventStore;
  repo: Pick<SessionsRepository, 'session' | 'sessionsOf' | 'projection'>;
  /** The policy service (fail-closed client); undefined until NATS is connected. */
  policy: () => Pick<PolicyClient, 'authorize'> | undefined;
  eventContext: EventFactoryContext;
  now?: () => Date;
}

/**
 * Denials that only say no decision could be made (the policy service unreachable, its
 * state stale, the decision failing): a 503 to retry, never a 404 or a 403.
 */
const MAX_ATTEMPTS = 3;
const notFound = () => new PalisadeError('not_found', 'session not found');

/**
 * Agent work sessions (stream `session-<id>`): create, read, share and unshare with
 * people, agents joining and leaving, archive. Who may do what is the policy service's
 * decision, asked with the session's roles as resource attributes (owner,
 * collaborators, viewers, agents) and the caller as subject (an agent with its token);
 * a caller the policy does not let read the session gets 404, one that may read but not
 * act 403. A change is decided on the version it was authorized on: if the session
 * changed in between, it is authorized again.
 */
export class SessionsService {
  private readonly handler: CommandHandler<SessionState, SessionCommand, SessionEvent>;
  private readonly now: () => Date;

  constructor(private readonly d: SessionsServiceDependencies) {
    this.handler = new CommandHandler(d.store, sessionDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
    this.now = d.now ?? (() => new Date());
  }

  async create(caller: Caller): Promise<SessionView> {
    const { principal } = caller;
    if (principal.type !== 'user') throw new PalisadeError('forbidden', 'sessions are created by people');
    const sessionId = newEventId();
    const [decision] = await this.ask(caller, ['create'], { id: sessionId, attributes: { owner: principal.id, collaborators: [], viewers: [], agents: [] } });
    refuseUnlessAllowed('create', decision);
    await this.handler.handle(streamName('session', sessionId), this.command(principal, { type: 'create', data: { sessionId, owner: principal.id } }), { expectedVersion: 0 });
    return this.get(caller, sessionId);
  }

  async get(caller: Caller, sessionId: string): Promise<SessionView> {
    const row = await this.readable(caller, sessionId);
    return viewOf(row);
  }

  /** The sessions the caller owns, is shared with or (an agent) works in, that the policy lets it read. */
  async list(caller: Caller, page: { limit: number; before?: string }): Promise<SessionView[]> {
    const { principal } = caller;
    const member = principal.type === 'agent' ? { agent: principal.id } : { user: principal.id };
    if (principal.type === 'service') return [];
    const rows = await this.d.repo.sessionsOf(principal.tenantId, member, page.limit, page.before);
    const decisions = await Promise.all(rows.map((row) => this.ask(caller, ['read'], resourceOf(row))));
    return rows.filter((_, i) => decisions[i][0].decision === 'allow').map(viewOf);
  }

  share(caller: Caller, sessionId: string, userId: string, role: ShareRole, ifMatch?: number): Promise<SessionView> {
    return this.change(caller, sessionId, 'share', { type: 'share', data: { userId, role } }, ifMatch);
  }

  unshare(caller: Caller, sessionId: string, userId: string, ifMatch?: number): Promise<SessionView> {
    return this.change(caller, sessionId, 'share', { type: 'unshare', data: { userId } }, ifMatch);
  }

  join(caller: Caller, sessionId: string, agentId: string, ifMatch?: number): Promise<SessionView> {
    return this.change(caller, sessionId, 'write', { type: 'join', data: { agentId } }, ifMatch);
  }

  leave(caller: Caller, sessionId: string, agentId: string, ifMatch?: number): Promise<SessionView> {
    return this.change(caller, sessionId, 'write', { type: 'leave', data: { agentId } }, ifMatch);
  }

  archive(caller: Caller, sessionId: string, ifMatch?: number): Promise<SessionView> {
    return this.change(caller, sessionId, 'archive', { type: 'archive', data: {} }, ifMatch);
  }

  /** Authorize `action` on the session as it is, then decide on that same version; again if it changed meanwhile. */
  private async change(caller: Caller, sessionId: string, action: SessionAction, command: Omit<SessionCommand, 'metadata'>, ifMatch?: number): Promise<SessionView> {
    for (let attempt = 1; ; attempt++) {
      const row = await this.d.repo.session(caller.principal.tenantId, sessionId);
      if (!row) throw notFound();
      const [read, act] = await this.ask(caller, ['read', action], resourceOf(row));
      if (read.decision !== 'allow') throw notFound();
      refuseUnlessAllowed(action, act);
      if (ifMatch !== undefined && ifMatch !== row.version) throw new ConcurrencyError(streamName('session', sessionId), ifMatch, row.version);
      try {
        await this.handler.handle(streamName('session', sessionId), this.command(caller.principal, command), { expectedVersion: row.version });
        return viewOf((await this.d.repo.session(caller.principal.tenantId, sessionId))!);
      } catch (error) {
        if (!(error instanceof ConcurrencyError) || ifMatch !== undefined || attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }

  /** The session, if the policy lets the caller read it; else (another tenant's, not shared with the caller) not found. */
  private async readable(caller: Caller, sessionId: string): Promise<SessionRow> {
    const row = await this.d.repo.session(caller.principal.tenantId, sessionId);
    if (!row) throw notFound();
    const [read] = await this.ask(caller, ['read'], resourceOf(row));
    if (read.decision !== 'allow') throw notFound();
    return row;
  }

  /** The policy's decisions on these actions, in order (asked together: the client coalesces them). Fails closed. */
  private ask(caller: Caller, actions: readonly SessionAction[], resource: { id: string; attributes: SessionAttributes }): Promise<AuthorizeDecision[]> {
    return askPolicy(this.d.policy(), caller, actions.map((action) => ({ action, resource: { type: SESSION_RESOURCE, ...resource } })));
  }

  private command(principal: Principal, command: Omit<SessionCommand, 'metadata'>): SessionCommand {
    return { ...command, metadata: { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() } } as SessionCommand;
  }
}

/** The session's roles, as the policy service's built-in session roles read them. */
type SessionAttributes = { owner: string; collaborators: string[]; viewers: string[]; agents: string[] };

function resourceOf(row: SessionRow): { id: string; attributes: SessionAttributes } {
  return { id: row.sessionId, attributes: { owner: row.owner, collaborators: row.collaborators, viewers: row.viewers, agents: row.agents } };
}

function refuseUnlessAllowed(action: SessionAction, decision: AuthorizeDecision): void {
  if (decision.decision === 'allow') return;
  if (decision.decision === 'requires_approval') throw new PalisadeError('forbidden', `policy: ${action} on a session requires an approval (rule ${decision.rule}); approvals of session actions are not supported`);
  throw new PalisadeError('forbidden', `policy denies ${action} (rule ${decision.rule}): ${decision.reason}`, { rule: decision.rule });
}

function viewOf(row: SessionRow): SessionView {
  const view: SessionView = {
    id: row.sessionId,
    owner: row.owner,
    collaborators: row.collaborators,
    viewers: row.viewers,
    agents: row.agents,
    status: row.status,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    etag: row.version,
  };
  if (row.archivedAt) view.archivedAt = row.archivedAt;
  return view;
}
