import { DeciderSpecification } from '@palisade/eventsourcing';
import { MAX_MEMBERS, sessionDecider, type SessionCommand } from './sessions.decider';
import type { SessionEvent } from './sessions.events';

const spec = DeciderSpecification.for(sessionDecider);
const at = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-03T10:00:00.000Z') };
const cmd = (c: Omit<SessionCommand, 'metadata'>) => ({ ...c, metadata: at }) as SessionCommand;
const S = 's-1';
const created: SessionEvent = { type: 'sandbox-orchestrator.session.created', data: { sessionId: S, owner: 'alice' } };
const sharedBob: SessionEvent = { type: 'sandbox-orchestrator.session.shared', data: { sessionId: S, userId: 'bob', role: 'collaborator' } };
const botJoined: SessionEvent = { type: 'sandbox-orchestrator.session.agent_joined', data: { sessionId: S, agentId: 'release-bot' } };
const archived: SessionEvent = { type: 'sandbox-orchestrator.session.archived', data: { sessionId: S } };

describe('sessions decider', () => {
  it('creates a session once, owned by its creator', () => {
    spec([]).when(cmd({ type: 'create', data: { sessionId: S, owner: 'alice' } })).then([created]);
    spec([created]).when(cmd({ type: 'create', data: { sessionId: S, owner: 'bob' } })).thenThrows('conflict', 'already exists');
  });

  it('shares with a person as collaborator or viewer, changes the role, and does nothing when it is already so', () => {
    spec([created]).when(cmd({ type: 'share', data: { userId: 'bob', role: 'collaborator' } })).then([sharedBob]);
    spec([created, sharedBob]).when(cmd({ type: 'share', data: { userId: 'bob', role: 'viewer' } })).then([
      { type: 'sandbox-orchestrator.session.shared', data: { sessionId: S, userId: 'bob', role: 'viewer' } },
    ]);
    spec([created, sharedBob]).when(cmd({ type: 'share', data: { userId: 'bob', role: 'collaborator' } })).then([]);
  });

  it('refuses to share with the owner, beyond the member bound, and to unshare someone it is not shared with', () => {
    spec([created]).when(cmd({ type: 'share', data: { userId: 'alice', role: 'viewer' } })).thenThrows('validation', 'owner already has every right');
    const many: SessionEvent[] = Array.from({ length: MAX_MEMBERS }, (_, i) => ({ type: 'sandbox-orchestrator.session.shared', data: { sessionId: S, userId: `u-${i}`, role: 'viewer' } }));
    spec([created, ...many]).when(cmd({ type: 'share', data: { userId: 'one-too-many', role: 'viewer' } })).thenThrows('validation', `at most ${MAX_MEMBERS}`);
    spec([created, ...many]).when(cmd({ type: 'share', data: { userId: 'u-1', role: 'collaborator' } })).then([
      { type: 'sandbox-orchestrator.session.shared', data: { sessionId: S, userId: 'u-1', role: 'collaborator' } },
    ]);
    spec([created]).when(cmd({ type: 'unshare', data: { userId: 'bob' } })).thenThrows('not_found', 'not shared with this user');
    spec([created]).when(cmd({ type: 'unshare', data: { userId: 'constructor' } })).thenThrows('not_found'); // no inherited members
    spec([created, sharedBob]).when(cmd({ type: 'unshare', data: { userId: 'bob' } })).then([{ type: 'sandbox-orchestrator.session.unshared', data: { sessionId: S, userId: 'bob' } }]);
  });

  it('lets agents join and leave, once each', () => {
    spec([created]).when(cmd({ type: 'join', data: { agentId: 'release-bot' } })).then([botJoined]);
    spec([created, botJoined]).when(cmd({ type: 'join', data: { agentId: 'release-bot' } })).then([]);
    spec([created, botJoined]).when(cmd({ type: 'leave', data: { agentId: 'release-bot' } })).then([{ type: 'sandbox-orchestrator.session.agent_left', data: { sessionId: S, agentId: 'release-bot' } }]);
    spec([created]).when(cmd({ type: 'leave', data: { agentId: 'release-bot' } })).thenThrows('not_found', 'does not work in this session');
  });

  it('archives once; an archived session changes no more', () => {
    spec([created, sharedBob]).when(cmd({ type: 'archive', data: {} })).then([archived]);
    for (const c of [
      cmd({ type: 'archive', data: {} }),
      cmd({ type: 'share', data: { userId: 'carol', role: 'viewer' } }),
      cmd({ type: 'unshare', data: { userId: 'bob' } }),
      cmd({ type: 'join', data: { agentId: 'other-bot' } }),
    ]) {
      spec([created, sharedBob, archived]).when(c).thenThrows('illegal_state', 'session is archived');
    }
  });

  it('knows no session that was never created', () => {
    spec([]).when(cmd({ type: 'archive', data: {} })).thenThrows('not_found', 'session not found');
    spec([]).when(cmd({ type: 'share', data: { userId: 'bob', role: 'viewer' } })).thenThrows('not_found');
  });
});
