import { systemEventContext, type EventEnvelope, type Principal } from '@palisade/contracts';
import { InMemoryEventStore } from '@palisade/eventsourcing';
import type { AuthorizeDecision, AuthorizeRequest } from '@palisade/policy-client';
import type { SessionRow, SessionsRepository } from './sessions.repository';
import { SessionsService, type Caller } from './sessions.service';

const alice: Caller = { principal: { type: 'user', id: 'alice', tenantId: 'acme' } as Principal };
const bob: Caller = { principal: { type: 'user', id: 'bob', tenantId: 'acme' } as Principal };
const bot: Caller = { principal: { type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'bob' } as Principal, agentToken: 'the.agent.token' };

/** The read model as the projection keeps it, in memory: enough to drive the service. */
function memoryRepository(): Pick<SessionsRepository, 'session' | 'sessionsOf' | 'projection'> & { rows: Map<string, SessionRow> } {
  const rows = new Map<string, SessionRow>();
  return {
    rows,
    session: async (tenantId, sessionId) => {
      const row = rows.get(sessionId);
      return row && row.tenantId === tenantId ? { ...row } : undefined;
    },
    sessionsOf: async () => [...rows.values()],
    projection: {
      name: 'sessions',
      handles: ['sandbox-orchestrator.session.created', 'sandbox-orchestrator.session.shared', 'sandbox-orchestrator.session.agent_joined'],
      apply: async (_tx, events: readonly EventEnvelope[], version) => {
        for (const e of events) {
          const d = e.data as { sessionId: string; owner?: string; userId?: string; role?: string; agentId?: string };
          const row: SessionRow = rows.get(d.sessionId) ?? { tenantId: e.tenantId, sessionId: d.sessionId, owner: d.owner!, collaborators: [], viewers: [], agents: [], status: 'active', version, createdAt: e.occurredAt, updatedAt: e.occurredAt };
          if (d.role === 'collaborator') row.collaborators = [...row.collaborators, d.userId!];
          if (d.agentId) row.agents = [...row.agents, d.agentId];
          rows.set(d.sessionId, { ...row, version });
        }
      },
    },
  };
}

/** The policy's built-in session roles, enough for these tests (owner everything, collaborator read/write). */
function sessionRoles(request: AuthorizeRequest): AuthorizeDecision {
  const a = request.resource.attributes as { owner: string; collaborators: string[] };
  const id = request.subject.type === 'agent' ? 'bob' : request.subject.id;
  const allowed = a.owner === id || (a.collaborators.includes(id) && ['read', 'write'].includes(request.action));
  return allowed ? { decision: 'allow', rule: 'session-role', reason: 'ok' } : { decision: 'deny', rule: 'default-deny', reason: 'no rule allows this' };
}

describe('SessionsService', () => {
  let repo: ReturnType<typeof memoryRepository>;
  let asked: AuthorizeRequest[];
  let decide: (r: AuthorizeRequest) => AuthorizeDecision;
  let service: SessionsService;
  let store: InMemoryEventStore;

  beforeEach(() => {
    store = new InMemoryEventStore();
    repo = memoryRepository();
    asked = [];
    decide = sessionRoles;
    service = new SessionsService({
      store,
      repo,
      policy: () => ({ authorize: async (r) => (asked.push(r), decide(r)) }),
      eventContext: systemEventContext('sandbox-orchestrator'),
    });
  });

  it('asks the policy with the session roles as attributes; 404 when the caller may not read, 403 when it may read but not act', async () => {
    const session = await service.create(alice);
    expect(asked[0]).toMatchObject({ tenantId: 'acme', subject: { type: 'user', id: 'alice' }, action: 'create', resource: { type: 'session', attributes: { owner: 'alice' } } });
    await expect(service.get(bob, session.id)).rejects.toMatchObject({ code: 'not_found', message: 'session not found' });
    await expect(service.archive(bob, session.id)).rejects.toMatchObject({ code: 'not_found' });
    await service.share(alice, session.id, 'bob', 'collaborator');
    await expect(service.archive(bob, session.id)).rejects.toMatchObject({ code: 'forbidden', message: 'policy denies archive (rule default-deny): no rule allows this' });
    await expect(service.join(bob, session.id, 'release-bot')).resolves.toMatchObject({ agents: ['release-bot'] });
  });

  it("forwards an agent's token and never says whom it acts for; agents open no sessions", async () => {
    const session = await service.create(alice);
    await service.share(alice, session.id, 'bob', 'collaborator');
    asked = [];
    await service.get(bot, session.id);
    expect(asked[0].subject).toEqual({ type: 'agent', id: 'release-bot', token: 'the.agent.token' });
    await expect(service.create(bot)).rejects.toMatchObject({ code: 'forbidden', message: 'sessions are created by people' });
  });

  it('is unavailable (503), not 404 or 403, when the policy service could not decide', async () => {
    const session = await service.create(alice);
    for (const rule of ['policy-unavailable', 'policy-stale', 'decision-failed']) {
      decide = () => ({ decision: 'deny', rule, reason: 'no decision' });
      await expect(service.get(alice, session.id)).rejects.toMatchObject({ code: 'unavailable' });
      await expect(service.archive(alice, session.id)).rejects.toMatchObject({ code: 'unavailable' });
    }
    const unconnected = new SessionsService({ store: new InMemoryEventStore(), repo, policy: () => undefined, eventContext: systemEventContext('sandbox-orchestrator') });
    await expect(unconnected.get(alice, session.id)).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('authorizes again when the session changed between the decision and the append; If-Match is never retried', async () => {
    const session = await service.create(alice);
    let raced = false;
    service = new SessionsService({
      store,
      repo,
      policy: () => ({
        authorize: async (r) => {
          asked.push(r);
          if (r.action === 'share' && !raced) {
            raced = true; // someone else changes the session after this decision, before its append
            await service.join(alice, session.id, 'other-bot');
          }
          return sessionRoles(r);
        },
      }),
      eventContext: systemEventContext('sandbox-orchestrator'),
    });
    asked = [];
    await expect(service.share(alice, session.id, 'bob', 'collaborator')).resolves.toMatchObject({ collaborators: ['bob'], agents: ['other-bot'], etag: 3 });
    expect(asked.filter((r) => r.action === 'share')).toHaveLength(2); // decided again on the new version
    await expect(service.share(alice, session.id, 'dave', 'collaborator', 1)).rejects.toMatchObject({ code: 'conflict' });
  });
});
