/** The wire contract of palisade.rpc.policy.authorize (services/policy/README.md). */
export interface AuthorizeRequest {
  tenantId: string;
  subject: { type: 'user' | 'agent' | 'service'; id: string; actingFor?: string; tenantId?: string };
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
