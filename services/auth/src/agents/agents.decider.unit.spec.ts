import { DeciderSpecification } from '@palisade/eventsourcing';
import { agentDecider, agentGuideDecider, MAX_GUIDE_BYTES, ONE_LEVEL, type RegistrationFacts } from './agents.decider';
import type { AgentEvent } from './agents.events';

const given = DeciderSpecification.for(agentDecider);
const guide = DeciderSpecification.for(agentGuideDecider);
const metadata = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-01T00:00:00.000Z') };
const facts: RegistrationFacts = { team: 'active', ownerActive: true, ownerInTeam: true };
const register = { agentId: 'bot', name: 'release-bot', ownerId: 'alice', teamId: 'platform', facts };
const registered: AgentEvent = { type: 'auth.agent.registered', data: { agentId: 'bot', name: 'release-bot', ownerId: 'alice', teamId: 'platform' } };
const sub: AgentEvent = { type: 'auth.agent.registered', data: { agentId: 'sub', name: 'helper', ownerId: 'alice', teamId: 'platform', parentAgentId: 'bot' } };
const suspended: AgentEvent = { type: 'auth.agent.suspended', data: { agentId: 'bot', cause: 'person' } };
const token = { agentId: 'bot', keyId: 'k1', actingFor: 'alice', scopes: ['audit:read'], audience: ['palisade:policy'], jti: 'j1', issuedAtMs: Date.parse('2026-11-30T23:59:59.000Z'), expiresAt: '2026-12-01T00:15:00.000Z' };

describe('agent decider', () => {
  it('registers an agent of its owner in a team of theirs', () => {
    given([]).when({ type: 'RegisterAgent', data: register, metadata }).then([registered]);
    given([]).when({ type: 'RegisterAgent', data: { ...register, facts: { ...facts, ownerInTeam: false } }, metadata }).thenThrows('forbidden', 'not a member');
    given([]).when({ type: 'RegisterAgent', data: { ...register, facts: { ...facts, team: undefined } }, metadata }).thenThrows('not_found', 'team');
    given([]).when({ type: 'RegisterAgent', data: { ...register, facts: { ...facts, team: 'archived' } }, metadata }).thenThrows('conflict', 'archived');
    given([]).when({ type: 'RegisterAgent', data: { ...register, facts: { ...facts, ownerActive: false } }, metadata }).thenThrows('not_found', 'owner');
    given([registered]).when({ type: 'RegisterAgent', data: register, metadata }).thenThrows('conflict');
  });

  it('registers a subagent one level deep only, with its parent’s owner and team', () => {
    const parent = { status: 'active' as const, ownerId: 'alice', teamId: 'platform' };
    const asSub = { ...register, agentId: 'sub', name: 'helper', parentAgentId: 'bot' };
    given([]).when({ type: 'RegisterAgent', data: { ...asSub, facts: { ...facts, parent } }, metadata }).then([sub]);
    given([]).when({ type: 'RegisterAgent', data: { ...asSub, parentAgentId: 'sub', facts: { ...facts, parent: { ...parent, parentAgentId: 'bot' } } }, metadata }).thenThrows('forbidden', ONE_LEVEL);
    given([]).when({ type: 'RegisterAgent', data: { ...asSub, facts: { ...facts, parent: { ...parent, status: 'suspended' } } }, metadata }).thenThrows('conflict', 'suspended');
    given([]).when({ type: 'RegisterAgent', data: { ...asSub, ownerId: 'bob', facts: { ...facts, parent } }, metadata }).thenThrows('forbidden', 'owner');
    given([]).when({ type: 'RegisterAgent', data: { ...asSub, teamId: 'other', facts: { ...facts, parent } }, metadata }).thenThrows('validation', 'teamId');
    given([]).when({ type: 'RegisterAgent', data: { ...asSub, facts }, metadata }).thenThrows('not_found');
  });

  it('suspends, resumes and retires (for good); each only once', () => {
    given([registered]).when({ type: 'SuspendAgent', data: { agentId: 'bot', cause: 'person' }, metadata }).then([suspended]);
    given([registered, suspended]).when({ type: 'SuspendAgent', data: { agentId: 'bot', cause: 'person' }, metadata }).then([]);
    given([registered, suspended]).when({ type: 'ResumeAgent', data: { agentId: 'bot' }, metadata }).then([{ type: 'auth.agent.resumed', data: { agentId: 'bot' } }]);
    given([registered]).when({ type: 'ResumeAgent', data: { agentId: 'bot' }, metadata }).then([]);
    const retired: AgentEvent = { type: 'auth.agent.retired', data: { agentId: 'bot', cause: 'person' } };
    given([registered, suspended]).when({ type: 'RetireAgent', data: { agentId: 'bot', cause: 'person' }, metadata }).then([retired]);
    given([registered, retired]).when({ type: 'ResumeAgent', data: { agentId: 'bot' }, metadata }).thenThrows('conflict', 'retired');
    given([sub, { type: 'auth.agent.suspended', data: { agentId: 'sub', cause: 'parent' } }]).when({ type: 'ResumeAgent', data: { agentId: 'sub', parentStatus: 'suspended' }, metadata }).thenThrows('conflict', 'parent');
    given([]).when({ type: 'SuspendAgent', data: { agentId: 'bot', cause: 'person' }, metadata }).thenThrows('not_found');
  });

  it('revokes through a token issued after the stop’s own instant (a stop retried after a concurrent exchange)', () => {
    const later = { type: 'auth.agent-token.issued' as const, data: { ...token, teamId: 'platform', issuedAtMs: metadata.now.getTime() + 40 } };
    given([registered, later])
      .when({ type: 'SuspendAgent', data: { agentId: 'bot', cause: 'person' }, metadata })
      .then([{ type: 'auth.agent.suspended', data: { agentId: 'bot', cause: 'person', revokedThroughMs: metadata.now.getTime() + 40 } }]);
    const earlier = { ...later, data: { ...later.data, issuedAtMs: metadata.now.getTime() - 40 } };
    given([registered, earlier]).when({ type: 'RetireAgent', data: { agentId: 'bot', cause: 'person' }, metadata }).then([{ type: 'auth.agent.retired', data: { agentId: 'bot', cause: 'person' } }]);
  });

  it('issues a token only to an active agent (and active parent), acting for its owner, in its team', () => {
    given([registered]).when({ type: 'IssueAgentToken', data: token, metadata }).then([{ type: 'auth.agent-token.issued', data: { ...token, teamId: 'platform' } }]);
    given([registered, suspended]).when({ type: 'IssueAgentToken', data: token, metadata }).thenThrows('unauthenticated', 'suspended');
    given([registered]).when({ type: 'IssueAgentToken', data: { ...token, actingFor: 'mallory' }, metadata }).thenThrows('unauthenticated');
    given([sub]).when({ type: 'IssueAgentToken', data: { ...token, agentId: 'sub', parentStatus: 'suspended' }, metadata }).thenThrows('unauthenticated', 'parent');
    given([sub]).when({ type: 'IssueAgentToken', data: { ...token, agentId: 'sub', parentStatus: 'active' }, metadata }).then([{ type: 'auth.agent-token.issued', data: { ...token, agentId: 'sub', teamId: 'platform' } }]);
  });
});

describe('agent guide decider', () => {
  const set = (sha256: string, bytes = 10, agent: 'active' | 'retired' | 'unknown' = 'active') => ({
    type: 'SetAgentGuide' as const,
    data: { agentId: 'bot', sha256, bytes, ...(agent === 'unknown' ? {} : { agentStatus: agent }) },
    metadata,
  });
  const changed = { type: 'auth.agent-guide.changed' as const, data: { agentId: 'bot', sha256: 'aa', bytes: 10 } };

  it('records a new text by its hash and size; the same text again changes nothing', () => {
    guide([]).when(set('aa')).then([changed]);
    guide([changed]).when(set('aa')).then([]);
    guide([changed]).when(set('bb')).then([{ ...changed, data: { ...changed.data, sha256: 'bb' } }]);
  });

  it('refuses a text over the cap, an unknown or retired agent', () => {
    guide([]).when(set('aa', MAX_GUIDE_BYTES + 1)).thenThrows('validation', 'text');
    guide([]).when(set('aa', 10, 'unknown')).thenThrows('not_found');
    guide([]).when(set('aa', 10, 'retired')).thenThrows('conflict', 'retired');
  });
});
