import { newEnforcer, newModelFromString, type Enforcer } from 'casbin';
import type { ConditionInput } from './condition';
import type { Attributes } from './policy.model';
import type { IndexedRule, TenantPolicy } from './tenant-policy';

/**
 * The policy model in Casbin's terms: tenants are domains, roles inherit within a
 * domain (g), rules carry an effect and an ABAC condition evaluated by `cond`, an
 * explicit deny overrides any allow, and no match denies. Casbin is the engine of
 * record: the indexed evaluator must give the same document-level answers (tested),
 * and the benchmark measures both.
 */
export const CASBIN_MODEL = `
[request_definition]
r = sub, dom, obj, act, ctx

[policy_definition]
p = sub, dom, obj, act, eft, id

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = r.dom == p.dom && (p.obj == r.obj || p.obj == "*") && (p.act == r.act || p.act == "*") && g(r.sub, p.sub, r.dom) && cond(r.ctx, p.id)
`;

/** Document-level rules: allow, and deny without fields (field effects are not Casbin's). */
export function documentRules(policy: TenantPolicy): IndexedRule[] {
  const out: IndexedRule[] = [];
  for (const p of policy.policies.values()) for (const r of p.rules) if (r.rule.effect === 'allow' || (r.rule.effect === 'deny' && !r.rule.fields)) out.push(r);
  return out;
}

/** A Casbin enforcer holding one tenant's roles, assignments and document-level rules. */
export async function casbinEnforcerFor(policy: TenantPolicy): Promise<Enforcer> {
  const enforcer = await newEnforcer(newModelFromString(CASBIN_MODEL));
  const rules = documentRules(policy);
  const conditions = new Map(rules.map((r) => [r.id, r.condition]));
  enforcer.addFunction('cond', (ctx: ConditionInput, id: string) => {
    const condition = conditions.get(id);
    return condition === undefined ? true : condition(ctx) === true;
  });
  const dom = policy.tenantId;
  if (rules.length) await enforcer.addPolicies(rules.map((r) => [r.rule.subject, dom, r.rule.resource, r.rule.action, r.rule.effect, r.id]));
  const grouping: string[][] = [];
  for (const [role, parents] of policy.roles) for (const parent of parents) grouping.push([`role:${role}`, `role:${parent}`, dom]);
  for (const [subject, roles] of policy.assignments) for (const role of roles) if (policy.roles.has(role)) grouping.push([subject, `role:${role}`, dom]);
  if (grouping.length) await enforcer.addGroupingPolicies(grouping);
  return enforcer;
}

/** Casbin's answer for a subject key in the tenant's domain. */
export async function casbinAllows(
  enforcer: Enforcer,
  policy: TenantPolicy,
  subjectKey: string,
  resourceType: string,
  action: string,
  resource: { id?: string; attributes?: Attributes },
): Promise<boolean> {
  const id = subjectKey.slice(subjectKey.indexOf(':') + 1);
  const ctx: ConditionInput = {
    subject: { ...policy.subjectAttributes.get(subjectKey), id },
    resource: resource.id === undefined ? resource.attributes ?? {} : { ...resource.attributes, id: resource.id },
  };
  return enforcer.enforce(subjectKey, policy.tenantId, resourceType, action, ctx);
}
