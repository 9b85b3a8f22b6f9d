/**
 * The evaluator as it was before issue 17's compiled matchers (commit ebfb2f3: evaluate.ts,
 * the index and role closures of tenant-policy.ts, the condition compiler of
 * condition.ts), kept verbatim apart from imports and names, as the reference the
 * differential test compares the current evaluator with. Not used by the service.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { definitionKey } from '../../src/model/condition';
import {
  AGENT_IMMUTABLE_TYPES,
  DEFAULT_CRITICAL_ACTIONS,
  PLATFORM_TENANT,
  SESSION_ROLE_ACTIONS,
  TOOL_ACTION,
  TOOL_RESOURCE,
  type AttributeDefinition,
  type Attributes,
  type AttributeValue,
  type Condition,
  type Decision,
  type DecisionRequest,
  type Explanation,
  type FieldDecision,
  type Rule,
  type SessionRole,
} from '../../src/model/policy.model';
import type { PermissionEvent } from '../../src/policyset/policyset.events';

export interface ConditionInput {
  subject: Attributes;
  resource: Attributes;
  /** When given, every attribute read is recorded with its value (explain mode). */
  used?: Record<string, AttributeValue | null>;
}
export type CompiledCondition = (input: ConditionInput) => boolean | undefined;
type Definitions = ReadonlyMap<string, AttributeDefinition>;
function read(input: ConditionInput, path: string): AttributeValue | undefined {
  const dot = path.indexOf('.');
  const bag = path.charCodeAt(0) === 115 /* s */ ? input.subject : input.resource;
  const value = bag[path.slice(dot + 1)];
  if (input.used) input.used[path] = value ?? null;
  return value;
}

/** Compile a validated condition to a closure (no interpretation of the tree per decision). */
function compileCondition(condition: Condition, defs: Definitions): CompiledCondition {
  if ('all' in condition || 'any' in condition) {
    // all: false wins; any: true wins; otherwise unknown if any part is unknown
    const decisive = 'any' in condition;
    const parts = ('all' in condition ? condition.all : condition.any).map((c) => compileCondition(c, defs));
    return (input) => {
      let unknown = false;
      for (const part of parts) {
        const r = part(input);
        if (r === decisive) return decisive;
        if (r === undefined) unknown = true;
      }
      return unknown ? undefined : !decisive;
    };
  }
  if ('not' in condition) {
    const inner = compileCondition(condition.not, defs);
    return (input) => {
      const r = inner(input);
      return r === undefined ? undefined : !r;
    };
  }
  const { attr, op, value, ref } = condition;
  const levels = defs.get(attr)?.type === 'level' ? defs.get(attr)!.levels ?? [] : undefined;
  const rank = (v: AttributeValue | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (levels) {
      const i = levels.indexOf(String(v));
      return i < 0 ? undefined : i;
    }
    return typeof v === 'number' ? v : undefined;
  };
  const right: (input: ConditionInput) => AttributeValue | undefined = ref !== undefined ? (input) => read(input, ref) : () => value;
  return (input) => {
    const l = read(input, attr);
    const r = right(input);
    if (l === undefined || r === undefined) return undefined;
    switch (op) {
      case 'eq':
        return equal(l, r);
      case 'ne':
        return !equal(l, r);
      case 'in':
        return Array.isArray(r) ? (Array.isArray(l) ? l.every((x) => r.includes(x)) : r.includes(String(l))) : equal(l, r);
      case 'contains':
        return Array.isArray(l) ? (Array.isArray(r) ? r.every((x) => l.includes(x)) : l.includes(String(r))) : typeof l === 'string' && l.includes(String(r));
      default: {
        const a = rank(l);
        const b = rank(r);
        if (a === undefined || b === undefined) return undefined;
        return op === 'gte' ? a >= b : op === 'gt' ? a > b : op === 'lte' ? a <= b : a < b;
      }
    }
  };
}

function equal(a: AttributeValue, b: AttributeValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => x === b[i]);
  }
  return a === b;
}
export interface IndexedRule {
  /** `<policyId>/<ruleId>`: unique in the tenant. */
  id: string;
  rule: Rule;
  condition: CompiledCondition | undefined;
}

type BySubject = Map<string, IndexedRule[]>;
type ByAction = Map<string, BySubject>;

/**
 * One tenant's policy in memory, kept up to date event by event (no reload per
 * change), with its rules pre-indexed by resource type → action → subject so a
 * decision looks only at the rules of the subject's roles for that resource and
 * action, whatever the tenant's total. Role closures are cached per subject.
 */
export class ReferenceTenantPolicy {
  readonly roles = new Map<string, string[]>();
  /** subject → its directly assigned roles */
  readonly assignments = new Map<string, Set<string>>();
  readonly definitions = new Map<string, AttributeDefinition>();
  readonly subjectAttributes = new Map<string, Attributes>();
  tenantTools: ReadonlySet<string> = new Set();
  readonly agentTools = new Map<string, ReadonlySet<string>>();
  criticalActions: ReadonlySet<string> = new Set(DEFAULT_CRITICAL_ACTIONS);
  readonly policies = new Map<string, { version: number; rules: IndexedRule[] }>();
  /** Events applied, for metrics and tests. */
  applied = 0;
  private readonly index = new Map<string, ByAction>();
  private readonly closures = new Map<string, readonly string[]>();

  constructor(readonly tenantId: string) {}

  get ruleCount(): number {
    let n = 0;
    for (const p of this.policies.values()) n += p.rules.length;
    return n;
  }

  apply(event: PermissionEvent): void {
    this.applied++;
    switch (event.type) {
      case 'policy.role.defined':
        this.roles.set(event.data.role, event.data.inherits);
        this.closures.clear();
        break;
      case 'policy.role.removed':
        this.roles.delete(event.data.role);
        this.closures.clear();
        break;
      case 'policy.assignment.granted':
        for (const a of event.data.assignments) {
          let set = this.assignments.get(a.subject);
          if (!set) this.assignments.set(a.subject, (set = new Set()));
          set.add(a.role);
          this.closures.delete(a.subject);
        }
        break;
      case 'policy.assignment.revoked':
        for (const a of event.data.assignments) {
          this.assignments.get(a.subject)?.delete(a.role);
          this.closures.delete(a.subject);
        }
        break;
      case 'policy.attribute.defined':
        this.definitions.set(definitionKey(event.data.definition.target, event.data.definition.name), event.data.definition);
        // Level scales may have changed: recompile (rare; conditions stay closures).
        for (const [policyId, p] of this.policies) this.setRules(policyId, p.version, p.rules.map((r) => r.rule));
        break;
      case 'policy.subject-attributes.set':
        this.subjectAttributes.set(event.data.subject, event.data.attributes);
        break;
      case 'policy.tool-allowlist.set':
        if (event.data.agent === undefined) this.tenantTools = new Set(event.data.tools);
        else this.agentTools.set(event.data.agent, new Set(event.data.tools));
        break;
      case 'policy.critical-actions.set':
        this.criticalActions = new Set(event.data.actions);
        break;
      case 'policy.policy.published':
      case 'policy.policy.rolled-back':
        this.setRules(event.data.policyId, event.data.version, event.data.rules);
        break;
      case 'policy.policy.withdrawn':
        this.setRules(event.data.policyId, event.data.version, undefined);
        break;
    }
  }

  /** Replace one policy document's rules in the index (incremental: other documents are untouched). */
  private setRules(policyId: string, version: number, rules: readonly Rule[] | undefined): void {
    const previous = this.policies.get(policyId);
    if (previous) for (const r of previous.rules) this.unindex(r);
    if (!rules) {
      this.policies.delete(policyId);
      return;
    }
    const indexed = rules.map((rule) => ({
      id: `${policyId}/${rule.id}`,
      rule,
      condition: rule.when ? compileCondition(rule.when, this.definitions) : undefined,
    }));
    for (const r of indexed) this.indexRule(r);
    this.policies.set(policyId, { version, rules: indexed });
  }

  private indexRule(r: IndexedRule): void {
    let byAction = this.index.get(r.rule.resource);
    if (!byAction) this.index.set(r.rule.resource, (byAction = new Map()));
    let bySubject = byAction.get(r.rule.action);
    if (!bySubject) byAction.set(r.rule.action, (bySubject = new Map()));
    const list = bySubject.get(r.rule.subject);
    if (list) list.push(r);
    else bySubject.set(r.rule.subject, [r]);
  }

  private unindex(r: IndexedRule): void {
    const list = this.index.get(r.rule.resource)?.get(r.rule.action)?.get(r.rule.subject);
    if (!list) return;
    const i = list.indexOf(r);
    if (i >= 0) list.splice(i, 1);
  }

  /** The subject itself and every role it holds, directly or by inheritance (`role:<name>`). */
  closureOf(subject: string): readonly string[] {
    const cached = this.closures.get(subject);
    if (cached) return cached;
    const out = [subject];
    const seen = new Set<string>();
    const stack = [...(this.assignments.get(subject) ?? [])];
    while (stack.length) {
      const role = stack.pop()!;
      if (seen.has(role) || !this.roles.has(role)) continue;
      seen.add(role);
      out.push(`role:${role}`);
      stack.push(...(this.roles.get(role) ?? []));
    }
    this.closures.set(subject, out);
    return out;
  }

  /**
   * Rules that may apply to these subject keys, resource type and action, per key in
   * the order (type, action), (type, *), (*, action), (*, *). The index is resource type
   * → action → subject, so the few maps of this type and action are found once and
   * each subject key costs one look-up in a small map, however many rules the tenant has.
   */
  candidates(keys: readonly string[], resource: string, action: string, into: IndexedRule[]): IndexedRule[] {
    const byType = this.index.get(resource);
    const byAnyType = resource !== '*' ? this.index.get('*') : undefined;
    const a = byType?.get(action);
    const b = action !== '*' ? byType?.get('*') : undefined;
    const c = byAnyType?.get(action);
    const d = action !== '*' ? byAnyType?.get('*') : undefined;
    if (!a && !b && !c && !d) return into;
    for (const k of keys) {
      collect(a, k, into);
      collect(b, k, into);
      collect(c, k, into);
      collect(d, k, into);
    }
    return into;
  }
}

function collect(bySubject: BySubject | undefined, key: string, into: IndexedRule[]): void {
  const rules = bySubject?.get(key);
  if (rules) for (const r of rules) into.push(r);
}
export interface ReferencePolicyLookup {
  tenant: ReferenceTenantPolicy | undefined;
  platform: ReferenceTenantPolicy | undefined;
}

const deny = (rule: string, reason: string): Decision => ({ decision: 'deny', rule, reason });

/**
 * The decision, as a pure function of the request and the policies in memory: no
 * I/O, no clock. Deny by default; an explicit deny overrides any allow; an agent gets
 * the intersection of its own rights and its user's; nothing crosses tenants unless a
 * platform role allows it; critical actions answer requires_approval (the caller
 * then checks the approval token, which needs the store).
 */
export function referenceEvaluate(request: DecisionRequest, policies: ReferencePolicyLookup): Decision {
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

function decideForAgent(request: DecisionRequest, policy: ReferenceTenantPolicy, explain: boolean): Decision {
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

function decideFor(key: string, id: string, request: DecisionRequest, policy: ReferenceTenantPolicy, explain: boolean): Decision {
  const { resource, action } = request;
  if (resource.type === TOOL_RESOURCE && action === TOOL_ACTION && !policy.tenantTools.has(resource.id ?? '')) {
    return withExplain(deny('tenant-tool-allowlist', `tool ${resource.id ?? '(none)'} is not on the tenant's allowlist`), explain);
  }
  const input: ConditionInput = {
    subject: withId(subjectAttributesOf(key, request, policy.subjectAttributes.get(key)), id),
    resource: withId(resource.attributes, resource.id),
  };
  if (explain) input.used = {};
  const candidates = policy.candidates(policy.closureOf(key), resource.type, action, []);
  let allow: string | undefined;
  let denied: IndexedRule | undefined;
  const fieldRules: IndexedRule[] = [];
  const matched: string[] = [];
  for (const r of candidates) {
    if (r.condition && r.condition(input) !== true) continue;
    if (explain) matched.push(r.id);
    if (r.rule.effect === 'allow') allow ??= r.id;
    else if (r.rule.effect === 'deny' && !r.rule.fields) {
      denied = r;
      if (!explain) break;
    } else fieldRules.push(r);
  }
  const session = resource.type === 'session' ? sessionRoleOf(key, id, resource.attributes) : undefined;
  if (!allow && session && SESSION_ROLE_ACTIONS[session].includes(action)) allow = `session-role:${session}`;
  const explanation = (rule: string): Explanation => ({ rule, matched, attributes: input.used ?? {} });

  let decision: Decision;
  if (denied) decision = { decision: 'deny', rule: denied.id, reason: `denied by rule ${denied.id}` };
  else if (!allow) decision = { decision: 'deny', rule: 'default-deny', reason: 'no rule allows this' };
  else {
    decision = { decision: 'allow', rule: allow, reason: `allowed by ${allow}` };
    if (resource.fields) decision.fields = fieldsOf(resource.fields, fieldRules);
  }
  if (explain) decision.explain = explanation(decision.rule);
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

function withId(attributes: Attributes | undefined, id: string | undefined): Attributes {
  return id === undefined ? attributes ?? {} : { ...attributes, id };
}

function withExplain(decision: Decision, explain: boolean): Decision {
  if (explain) decision.explain = { rule: decision.rule, matched: [], attributes: {} };
  return decision;
}

/**
 * What an approval is bound to: SHA-256 of the RFC 8785 canonical JSON of tenant,
 * requester, action, resource and parameters. Any change to any of them is another action.
 */
function actionHash(request: Pick<DecisionRequest, 'tenantId' | 'subject' | 'action' | 'resource' | 'parameters'>): string {
  const canonical = canonicalize({
    tenantId: request.tenantId,
    subject: { type: request.subject.type, id: request.subject.id, actingFor: request.subject.actingFor ?? null },
    action: request.action,
    resource: { type: request.resource.type, id: request.resource.id ?? null, tenantId: request.resource.tenantId ?? request.tenantId },
    parameters: request.parameters ?? {},
  });
  return createHash('sha256').update(canonical!).digest('hex');
}
