import type { Principal } from '@palisade/contracts';
import type { Decision, DecisionRequest } from '../model/policy.model';

const deny = (rule: string, reason: string): Decision => ({ decision: 'deny', rule, reason });

/**
 * A decision a service asks about an agent, with who the agent is and whom it acts for
 * taken from the agent's own access token (verified by the caller of this function
 * against the asking service's audience), never from the request body: the body may
 * name the agent and its user only as the token does. `holder` is the token's principal,
 * or why it was not accepted. The answer is the request to evaluate (subject from the
 * token, the token itself dropped) or the denial. Pure.
 */
export function verifiedAgentRequest(request: DecisionRequest, holder: Principal | string): DecisionRequest | Decision {
  const { subject } = request;
  if (typeof holder === 'string') return deny('agent-unverified', `the agent's access token was not accepted: ${holder}`);
  if (holder.type !== 'agent') return deny('agent-unverified', "subject.token is not an agent's access token");
  if (holder.id !== subject.id) return deny('agent-token-mismatch', 'subject.id is not the agent the token was issued to');
  if (holder.tenantId !== (subject.tenantId ?? request.tenantId)) return deny('agent-token-mismatch', "the agent's token is of another tenant");
  if (!holder.actingFor) return deny('agent-without-user', 'an agent must act for a user (its token names none)');
  if (subject.actingFor !== undefined && subject.actingFor !== holder.actingFor) {
    return deny('agent-token-mismatch', 'subject.actingFor is not the user the agent token acts for');
  }
  const verified: DecisionRequest['subject'] = { type: 'agent', id: holder.id, actingFor: holder.actingFor };
  if (holder.teams) verified.teams = holder.teams;
  if (holder.department) verified.department = holder.department;
  if (subject.tenantId !== undefined) verified.tenantId = subject.tenantId;
  return { ...request, subject: verified };
}

/** Why an agent decision without a verifiable token is refused. */
export function missingAgentToken(request: DecisionRequest): string {
  return request.askedBy ? 'subject.token is required for an agent (its access token as presented to the asking service)' : 'the asking service is unknown';
}
