import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { ConditionInput } from './condition';
import {
  AGENT_IMMUTABLE_TYPES,
  PLATFORM_TENANT,
  SESSION_ROLE_ACTIONS,
  TOOL_ACTION,
  TOOL_RESOURCE,
  type Attributes,
  type AttributeValue,
  type Decision,
  type DecisionRequest,
  type Explanation,
  type FieldDecision,
  type SessionRole,
} from './policy.model';
import type { IndexedRule, TenantPolicy } from './tenant-policy';

/** The policies a decision may read: the request's tenant and the platform's. */
export interface PolicyLookup {
  tenant: TenantPolicy | undefined;
  platform: TenantPolicy | undefined;
}

const deny = (rule: string, reason: string): Decision => ({ decision: 'deny', rule, reason });

/**
 * The decision, as a pure function of the request and the policies in memory: no
 * I/O, no clock. Deny by default; an explicit deny overrides any allow; an agent gets
 * the intersection of its own rights and its user's; nothing crosses tenants unless a
 * platform role allows it; critical actions answer requires_approval (the caller
 * then checks the approval token, which needs the store).
 */
export function evaluate(request: DecisionRequest, policies: PolicyLookup): Decision {
  const explain = request.explain === true;
  const subjectTenant = request.subject.tenantId ?? request.tenantId;
  const resourceTenant = request.resource.tenantId ?? request.tenantId;
  let policy = policies.tenant;
  if (subjectTenant !== resourceTenant || subjectTenant !== request.tenantId) {
    if (subjectTenant !== PLATFORM_TENANT) return withExplain(deny('cross-tenant', 'the resource belongs to another tenant'), explain);
    policy = policies.platform;
  }
  if (!policy) return withExplain(deny('default-deny', 'no policy for this tenant'), explain);

  const { subject } = request;
  let decision: Decision;
  if (subject.type === 'agent') {
    decision = decideForAgent(request, policy, explain);
  } else {
    decision = decideFor(`${subject.type}:${subject.id}`, subject.id, request, policy, explain);
  }
  if (decision.decision === 'allow' && policy.criticalActions.has(request.action)) {
    return {
      ...decision,
      decision: 'requires_approval',
      rule: 'critical-action',
      reason: `${request.action} is a critical action: it needs an approval`,
      actionHash: actionHash(request),
    };
  }
  return decision;
}

function decideForAgent(request: DecisionRequest, policy: TenantPolicy, explain: boolean): Decision {
  const { subject, resource, action } = request;
  if (AGENT_IMMUTABLE_TYPES.includes(resource.type) && action !== 'read') {
    return withExplain(deny('agent-immutable', `an agent may not ${action} a ${resource.type}`), explain);
  }
  if (!subject.actingFor) return withExplain(deny('agent-without-user', 'an agent must act for a user'), explain);
  if (resource.type === TOOL_RESOURCE && action === TOOL_ACTION && !policy.agentTools.get(subject.id)?.has(resource.id ?? '')) {
    return withExplain(deny('agent-tool-allowlist', `tool ${resource.id ?? '(none)'} is not on this agent's allowlist`), explain);
  }
  const own = decideFor(`agent:${subject.id}`, subject.id, request, policy, explain);
  if (own.decision !== 'allow') return own;
  const user = decideFor(`user:${subject.actingFor}`, subject.actingFor, request, policy, explain);
  if (user.decision !== 'allow') {
    return { ...user, reason: `the user the agent acts for may not: ${user.reason}` };
  }
  const out: Decision = { decision: 'allow', rule: own.rule, reason: 'allowed to the agent and to its user' };
  if (own.fields && user.fields) out.fields = intersectFields(own.fields, user.fields);
  if (explain) {
    out.explain = {
      rule: own.rule,
      matched: [...own.explain!.matched, ...user.explain!.matched],
      attributes: { ...own.explain!.attributes, ...user.explain!.attributes },
    };
  }
  return out;
}

const NO_ATTRIBUTES: Attributes = {};

function decideFor(key: string, id: string, request: DecisionRequest, policy: TenantPolicy, explain: boolean): Decision {
  const { resource, action } = request;
  if (resource.type === TOOL_RESOURCE && action === TOOL_ACTION && !policy.tenantTools.has(resource.id ?? '')) {
    return withExplain(deny('tenant-tool-allowlist', `tool ${resource.id ?? '(none)'} is not on the tenant's allowlist`), explain);
  }
  // The attributes as they are: the conditions read the ids from subjectId / resourceId (no copy per decision).
  const input: ConditionInput = {
    subject: subjectAttributesOf(key, request, policy.subjectAttributes.get(key)) ?? NO_ATTRIBUTES,
    resource: resource.attributes ?? NO_ATTRIBUTES,
    subjectId: id,
    resourceId: resource.id,
  };
  if (explain) input.used = {};
  const matched: string[] | undefined = explain ? [] : undefined;
  let allow: string | undefined;
  let denied: IndexedRule | undefined;
  let fieldRules: IndexedRule[] | undefined;
  const rules = policy.rulesFor(resource.type, action);
  if (rules) {
    scan: for (const subjectKey of policy.closureOf(key)) {
      const list = rules.get(subjectKey);
      if (list === undefined) continue;
      for (const r of list) {
        if (r.condition && r.condition(input) !== true) continue;
        matched?.push(r.id);
        if (r.rule.effect === 'allow') allow ??= r.id;
        else if (r.rule.effect === 'deny' && !r.rule.fields) {
          denied = r;
          if (!explain) break scan;
        } else (fieldRules ??= []).push(r);
      }
    }
  }
  const session = resource.type === 'session' ? sessionRoleOf(key, id, resource.attributes) : undefined;
  if (!allow && session && SESSION_ROLE_ACTIONS[session].includes(action)) allow = `session-role:${session}`;

  let decision: Decision;
  if (denied) decision = { decision: 'deny', rule: denied.id, reason: `denied by rule ${denied.id}` };
  else if (!allow) decision = { decision: 'deny', rule: 'default-deny', reason: 'no rule allows this' };
  else {
    decision = { decision: 'allow', rule: allow, reason: `allowed by ${allow}` };
    if (resource.fields) decision.fields = fieldsOf(resource.fields, fieldRules ?? []);
  }
  if (explain) decision.explain = { rule: decision.rule, matched: matched!, attributes: input.used ?? {} } satisfies Explanation;
  return decision;
}

function fieldsOf(fields: readonly string[], rules: readonly IndexedRule[]): FieldDecision {
  const withheld = new Set<string>();
  const masked = new Set<string>();
  for (const r of rules) for (const f of r.rule.fields ?? []) (r.rule.effect === 'deny' ? withheld : masked).add(f);
  const out: FieldDecision = { readable: [], masked: [] };
  for (const f of fields) {
    if (withheld.has(f) || withheld.has('*')) continue;
    if (masked.has(f) || masked.has('*')) out.masked.push(f);
    else out.readable.push(f);
  }
  return out;
}

/** A field readable by both stays readable; masked by either is masked; withheld by either is withheld. */
function intersectFields(a: FieldDecision, b: FieldDecision): FieldDecision {
  const visibleB = new Set([...b.readable, ...b.masked]);
  const maskedAny = new Set([...a.masked, ...b.masked]);
  const out: FieldDecision = { readable: [], masked: [] };
  for (const f of [...a.readable, ...a.masked]) {
    if (!visibleB.has(f)) continue;
    (maskedAny.has(f) ? out.masked : out.readable).push(f);
  }
  return out;
}

/** A user's role in a session; an agent working in it (`agents`) has the collaborator's, for its own part. */
function sessionRoleOf(key: string, id: string, attributes: Attributes | undefined): SessionRole | undefined {
  if (!attributes) return undefined;
  if (key.startsWith('agent:')) return includes(attributes.agents, id) ? 'collaborator' : undefined;
  if (!key.startsWith('user:')) return undefined;
  if (attributes.owner === id) return 'owner';
  if (includes(attributes.collaborators, id)) return 'collaborator';
  if (includes(attributes.viewers, id)) return 'viewer';
  return undefined;
}

function includes(list: AttributeValue | undefined, id: string): boolean {
  return Array.isArray(list) && list.includes(id);
}

/**
 * The attributes of the subject being decided for: what the tenant stored for it, with
 * the teams and department of its verified token (auth's word on them) over those.
 * Only for the subject itself, never for the user an agent acts for.
 */
function subjectAttributesOf(key: string, request: DecisionRequest, stored: Attributes | undefined): Attributes | undefined {
  const { type, id, teams, department } = request.subject;
  if (key !== `${type}:${id}` || (teams === undefined && department === undefined)) return stored;
  return { ...stored, ...(teams ? { teams } : {}), ...(department ? { department } : {}) };
}

function withExplain(decision: Decision, explain: boolean): Decision {
  if (explain) decision.explain = { rule: decision.rule, matched: [], attributes: {} };
  return decision;
}

/**
 * What an approval is bound to: SHA-256 of the RFC 8785 canonical JSON of tenant,
 * requester, action, resource and parameters. Any change to any of them is another action.
 */
export function actionHash(request: Pick<DecisionRequest, 'tenantId' | 'subject' | 'action' | 'resource' | 'parameters'>): string {
  const canonical = canonicalize({
    tenantId: request.tenantId,
    subject: { type: request.subject.type, id: request.subject.id, actingFor: request.subject.actingFor ?? null },
    action: request.action,
    resource: { type: request.resource.type, id: request.resource.id ?? null, tenantId: request.resource.tenantId ?? request.tenantId },
    parameters: request.parameters ?? {},
  });
  return createHash('sha256').update(canonical!).digest('hex');
}
