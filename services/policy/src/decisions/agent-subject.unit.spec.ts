import type { Principal } from '@palisade/contracts';
import type { DecisionRequest } from '../model/policy.model';
import { missingAgentToken, verifiedAgentRequest } from './agent-subject';

const request = (subject: Partial<DecisionRequest['subject']> = {}): DecisionRequest => ({
  tenantId: 'acme',
  subject: { type: 'agent', id: 'release-bot', token: 'the-agents-token', ...subject },
  action: 'invoke',
  resource: { type: 'tool', id: 'gerrit.query' },
  askedBy: 'sandbox-orchestrator',
});
const holder: Principal = { type: 'agent', id: 'release-bot', tenantId: 'acme', actingFor: 'alice', scopes: [] };

describe('verifiedAgentRequest: an agent is who its verified token says', () => {
  it('takes the user the agent acts for from the token and drops the token', () => {
    expect(verifiedAgentRequest(request(), holder)).toEqual({ ...request(), subject: { type: 'agent', id: 'release-bot', actingFor: 'alice' } });
    expect(verifiedAgentRequest(request({ actingFor: 'alice' }), holder)).toMatchObject({ subject: { actingFor: 'alice' } });
  });

  it('carries the team and department the token names (issue 12)', () => {
    expect(verifiedAgentRequest(request(), { ...holder, teams: ['platform'], department: 'platform' })).toMatchObject({
      subject: { type: 'agent', id: 'release-bot', actingFor: 'alice', teams: ['platform'], department: 'platform' },
    });
  });

  it('refuses what the body claims beyond the token: another user, another agent, another tenant', () => {
    expect(verifiedAgentRequest(request({ actingFor: 'bob' }), holder)).toEqual({
      decision: 'deny',
      rule: 'agent-token-mismatch',
      reason: 'subject.actingFor is not the user the agent token acts for',
    });
    expect(verifiedAgentRequest(request({ id: 'other-bot' }), holder)).toMatchObject({ decision: 'deny', rule: 'agent-token-mismatch' });
    expect(verifiedAgentRequest(request({ tenantId: 'globex' }), holder)).toMatchObject({ decision: 'deny', rule: 'agent-token-mismatch' });
    expect(verifiedAgentRequest(request(), { ...holder, tenantId: 'globex' })).toMatchObject({ decision: 'deny', rule: 'agent-token-mismatch' });
  });

  it('refuses a user token, a token acting for nobody, and a token that was not accepted (saying why, never the token)', () => {
    expect(verifiedAgentRequest(request(), { ...holder, type: 'user' })).toMatchObject({ decision: 'deny', rule: 'agent-unverified' });
    const { actingFor: _none, ...alone } = holder;
    void _none;
    expect(verifiedAgentRequest(request(), alone)).toMatchObject({ decision: 'deny', rule: 'agent-without-user' });
    const refused = verifiedAgentRequest(request(), 'access token expired');
    expect(refused).toEqual({ decision: 'deny', rule: 'agent-unverified', reason: "the agent's access token was not accepted: access token expired" });
    expect(JSON.stringify(refused)).not.toContain('the-agents-token');
  });

  it('says what is missing: the token, or the asking service', () => {
    expect(missingAgentToken(request({ token: undefined }))).toContain('subject.token is required');
    expect(missingAgentToken({ ...request(), askedBy: undefined })).toBe('the asking service is unknown');
  });
});
