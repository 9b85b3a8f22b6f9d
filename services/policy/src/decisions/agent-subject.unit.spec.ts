import type { Principal } from '@palisade/contracts';
import type { DecisionRequest } from '../model/policy.model';
import { missingAgentToken, subjectOfPrincipal, verifiedAgentRequest, verifiedUserRequest } from './agent-subject';

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

describe('verifiedUserRequest: a person whose token a service forwards is who, and in which teams, it says (issue 12)', () => {
  const userRequest = (subject: Partial<DecisionRequest['subject']> = {}): DecisionRequest => ({
    tenantId: 'acme',
    subject: { type: 'user', id: 'frank', token: 'franks-token', ...subject },
    action: 'run',
    resource: { type: 'build' },
    askedBy: 'credential',
  });
  const frank: Principal = { type: 'user', id: 'frank', tenantId: 'acme', teams: ['platform', 'data'], department: 'platform', scopes: [] };

  it('takes the user, teams and department from the token and drops the token', () => {
    expect(verifiedUserRequest(userRequest(), frank)).toEqual({
      ...userRequest(),
      subject: { type: 'user', id: 'frank', teams: ['platform', 'data'], department: 'platform' },
    });
    expect(verifiedUserRequest(userRequest({ tenantId: 'acme' }), { ...frank, teams: undefined, department: undefined })).toEqual({
      ...userRequest(),
      subject: { type: 'user', id: 'frank', tenantId: 'acme' },
    });
  });

  it('refuses what the body claims beyond the token: another user, another tenant, acting for someone', () => {
    expect(verifiedUserRequest(userRequest({ id: 'gina' }), frank)).toEqual({ decision: 'deny', rule: 'user-token-mismatch', reason: 'subject.id is not the user the token was issued to' });
    expect(verifiedUserRequest(userRequest({ tenantId: 'globex' }), frank)).toMatchObject({ decision: 'deny', rule: 'user-token-mismatch' });
    expect(verifiedUserRequest(userRequest(), { ...frank, tenantId: 'globex' })).toMatchObject({ decision: 'deny', rule: 'user-token-mismatch' });
    expect(verifiedUserRequest(userRequest({ actingFor: 'alice' }), frank)).toMatchObject({ decision: 'deny', rule: 'user-token-mismatch' });
  });

  it("refuses an agent's token and a token that was not accepted (saying why, never the token)", () => {
    expect(verifiedUserRequest(userRequest(), { ...frank, type: 'agent', actingFor: 'alice' })).toMatchObject({ decision: 'deny', rule: 'user-unverified' });
    const refused = verifiedUserRequest(userRequest(), 'unexpected "aud" claim value');
    expect(refused).toEqual({ decision: 'deny', rule: 'user-unverified', reason: 'the user\'s access token was not accepted: unexpected "aud" claim value' });
    expect(JSON.stringify(refused)).not.toContain('franks-token');
  });
});

describe('subjectOfPrincipal: the policy service deciding about its own caller', () => {
  it('names the verified principal with its teams and department (and an agent its user)', () => {
    expect(subjectOfPrincipal({ type: 'user', id: 'frank', tenantId: 'acme', teams: ['platform'], department: 'platform', scopes: [] })).toEqual({
      type: 'user',
      id: 'frank',
      teams: ['platform'],
      department: 'platform',
    });
    expect(subjectOfPrincipal({ type: 'user', id: 'gina', tenantId: 'acme', scopes: [] })).toEqual({ type: 'user', id: 'gina' });
    expect(subjectOfPrincipal(holder)).toEqual({ type: 'agent', id: 'release-bot', actingFor: 'alice' });
  });
});
