/** The wire contract of palisade.rpc.policy.authorize (services/policy/README.md). */
export interface AuthorizeRequest {
  tenantId: string;
  /**
   * For an agent, `token` is its access token as it was presented to the asking service:
   * the policy service verifies it and takes the agent and the user it acts for
   * (`act.sub`) from it; an agent decision without it is a denial (`agent-unverified`).
   * For a user, `token` (optional) is the user's access token as presented to the asking
   * service: verified the same way, it makes the user's teams and department reach ABAC
   * (`subject.teams`, `subject.department`); one that does not verify is `user-unverified`.
   */
  subject: { type: 'user' | 'agent' | 'service'; id: string; actingFor?: string; tenantId?: string; token?: string };
  action: string;
  resource: { type: string; id?: string; tenantId?: string; attributes?: Record<string, string | number | boolean | string[]>; fields?: string[] };
  parameters?: Record<string, unknown>;
  approvalToken?: string;
  explain?: boolean;
}

export interface AuthorizeDecision {
  decision: 'allow' | 'deny' | 'requires_approval';
  rule: string;
  reason: string;
  fields?: { readable: string[]; masked: string[] };
  actionHash?: string;
  explain?: { rule: string; matched: string[]; attributes: Record<string, unknown> };
}

export const AUTHORIZE_SUBJECT = 'palisade.rpc.policy.authorize';
export const AUTHORIZE_BATCH_SUBJECT = 'palisade.rpc.policy.authorize-batch';
/** Events that change decisions: every policy event invalidates its tenant's cached decisions. */
export const POLICY_EVENTS = 'palisade.events.policy.>';
