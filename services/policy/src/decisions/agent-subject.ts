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
  return verifiedRequest('agent', request, holder);
}

/**
 * A decision a service asks about a person and forwards the person's access token with
 * (as presented to that service, verified like an agent's by the caller of this
 * function): the person, tenant, teams and department come from the token; the body may
 * only repeat the user and tenant, and a person acts for nobody. Without a token a
 * user's decision stays what the asking service says (this function is not called).
 * The answer is the request to evaluate (token dropped) or the denial. Pure.
 */
export function verifiedUserRequest(request: DecisionRequest, holder: Principal | string): DecisionRequest | Decision {
  return verifiedRequest('user', request, holder);
}

/** The two above: the same checks of a forwarded token, and whom the subject acts for. */
function verifiedRequest(kind: 'agent' | 'user', request: DecisionRequest, holder: Principal | string): DecisionRequest | Decision {
  const { subject } = request;
  const [unverified, mismatch, whose, one] = [`${kind}-unverified`, `${kind}-token-mismatch`, `the ${kind}'s`, kind === 'agent' ? 'an agent' : 'a user'];
  if (typeof holder === 'string') return deny(unverified, `${whose} access token was not accepted: ${holder}`);
  if (holder.type !== kind) return deny(unverified, `subject.token is not ${one}'s access token`);
  if (holder.id !== subject.id) return deny(mismatch, `subject.id is not the ${kind} the token was issued to`);
  if (holder.tenantId !== (subject.tenantId ?? request.tenantId)) return deny(mismatch, `${whose} token is of another tenant`);
  const verified: DecisionRequest['subject'] = { type: kind, id: holder.id, ...tokenAttributes(holder) };
  if (kind === 'agent') {
    if (!holder.actingFor) return deny('agent-without-user', 'an agent must act for a user (its token names none)');
    if (subject.actingFor !== undefined && subject.actingFor !== holder.actingFor) return deny(mismatch, 'subject.actingFor is not the user the agent token acts for');
    verified.actingFor = holder.actingFor;
  } else if (subject.actingFor !== undefined) {
    return deny(mismatch, 'a user acts for nobody (subject.actingFor)');
  }
  if (subject.tenantId !== undefined) verified.tenantId = subject.tenantId;
  return { ...request, subject: verified };
}

/**
 * The subject of a decision the policy service makes about its own authenticated caller
 * (administration, approvals): who the verified token says, with its teams and department.
 */
export function subjectOfPrincipal(principal: Principal): DecisionRequest['subject'] {
  return { type: principal.type, id: principal.id, ...(principal.actingFor ? { actingFor: principal.actingFor } : {}), ...tokenAttributes(principal) };
}

/** The teams and department a verified token names (ABAC's subject.teams / subject.department). */
function tokenAttributes(holder: Principal): Pick<DecisionRequest['subject'], 'teams' | 'department'> {
  return { ...(holder.teams ? { teams: holder.teams } : {}), ...(holder.department ? { department: holder.department } : {}) };
}

/** Why an agent decision without a verifiable token is refused. */
export function missingAgentToken(request: DecisionRequest): string {
  return request.askedBy ? 'subject.token is required for an agent (its access token as presented to the asking service)' : 'the asking service is unknown';
}
