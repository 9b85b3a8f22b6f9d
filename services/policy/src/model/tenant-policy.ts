import { compileCondition, definitionKey, type CompiledCondition } from './condition';
import {
  DEFAULT_CRITICAL_ACTIONS,
  type AttributeDefinition,
  type Attributes,
  type Rule,
} from './policy.model';
import type { PermissionEvent } from '../policyset/policyset.events';

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
export class TenantPolicy {
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
