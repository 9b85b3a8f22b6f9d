import { subjectOf, type AuthorizeDecision, type AuthorizeRequest, type PolicyClient } from '@palisade/policy-client';
import { invariantRefusal, type AccessDecision, type AccessRequest, type CredentialAccessPolicy, type CredentialAction } from './access-policy';

/** Resource type of a secret in the policy service's model. */
export const CREDENTIAL_RESOURCE = 'credential';
/** The policy service's tool calls: action `invoke` on resource type `tool`, id = tool name (allowlists apply). */
export const TOOL_RESOURCE = 'tool';
export const TOOL_ACTION = 'invoke';

/** Action names in policy rules: `credential.create`, `credential.use` … (qualified like `payments.create`, so one can be made critical). */
export const policyActionFor = (action: CredentialAction): string => `credential.${action}`;

/** Rule the policy client names when the service could not be asked. */
const UNAVAILABLE_RULE = 'policy-unavailable';

/**
 * The policy decisions one access request needs, in order:
 * - `credential.<action>` on resource `credential` (id = the secret, attributes: its
 *   scopes and, for a lease, the tool), by the principal: a person or service as itself,
 *   an agent by the access token it presented here (`subjectOf`), from which the policy
 *   service takes the agent and the user it acts for and intersects their rights (we
 *   never claim the user ourselves: a claim without the token is a denial);
 * - for `use` also `invoke` on resource `tool` (id = the tool): the tenant's and the
 *   agent's tool allowlists apply only to that action, so a lease for a tool needs the
 *   right to run the tool too.
 */
export function policyRequestsFor({ principal, action, secret, tool, authorization }: AccessRequest): AuthorizeRequest[] {
  const subject = subjectOf(principal, authorization);
  const attributes: Record<string, string | string[]> = {};
  if (secret) attributes.scopes = [...secret.scopes];
  if (tool) attributes.tool = tool;
  const requests: AuthorizeRequest[] = [
    {
      tenantId: principal.tenantId,
      subject,
      action: policyActionFor(action),
      resource: { type: CREDENTIAL_RESOURCE, ...(secret ? { id: secret.secretId } : {}), ...(Object.keys(attributes).length > 0 ? { attributes } : {}) },
    },
  ];
  if (action === 'use' && tool) requests.push({ tenantId: principal.tenantId, subject, action: TOOL_ACTION, resource: { type: TOOL_RESOURCE, id: tool } });
  return requests;
}

/**
 * The access decision from the policy's answers: allowed only when every one is an
 * explicit allow. A required approval is a refusal (approvals of credential actions are
 * not supported yet); a policy service that could not decide makes the refusal
 * `unavailable` (503, worth retrying) rather than a 403.
 */
export function accessDecisionOf(requests: readonly AuthorizeRequest[], decisions: readonly AuthorizeDecision[]): AccessDecision {
  const unavailable = decisions.find((d) => d.rule === UNAVAILABLE_RULE && d.decision !== 'allow');
  if (unavailable) return { allowed: false, unavailable: true, reason: `the policy service could not decide (${unavailable.reason}): denied` };
  for (const [i, d] of decisions.entries()) {
    const action = requests[i].action;
    if (d.decision === 'requires_approval') return { allowed: false, reason: `policy: ${action} requires approval (rule ${d.rule}); approvals of credential actions are not supported` };
    if (d.decision !== 'allow') return { allowed: false, reason: `policy denies ${action} (rule ${d.rule}): ${d.reason}` };
  }
  return decisions.length === requests.length && decisions.length > 0 ? { allowed: true } : { allowed: false, reason: 'policy: no decision' };
}

/**
 * `CredentialAccessPolicy` backed by the policy service (through @palisade/policy-client:
 * NATS over mTLS, decisions cached and invalidated by policy events). The invariants no
 * policy may lift (`invariantRefusal`) are checked here first, without asking.
 * Fail-closed: no client yet, an error or a timeout is a refusal, never an exception.
 */
export class PolicyAccessPolicy implements CredentialAccessPolicy {
  /** `client`: the connected client, or undefined before NATS is connected. */
  constructor(private readonly client: () => Pick<PolicyClient, 'authorize'> | undefined) {}

  async decide(request: AccessRequest): Promise<AccessDecision> {
    const refused = invariantRefusal(request);
    if (refused) return { allowed: false, reason: refused };
    const client = this.client();
    if (!client) return { allowed: false, unavailable: true, reason: 'the policy service could not decide (not connected yet): denied' };
    const requests = policyRequestsFor(request);
    let decisions: AuthorizeDecision[];
    try {
      // asked in the same turn: the client sends them as one batch and caches each
      decisions = await Promise.all(requests.map((r) => client.authorize(r)));
    } catch {
      return { allowed: false, unavailable: true, reason: 'the policy service could not decide (the request failed): denied' };
    }
    return accessDecisionOf(requests, decisions);
  }
}
