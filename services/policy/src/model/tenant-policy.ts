import { compileCondition, definitionKey, type CompiledCondition } from './condition';
import {
  DEFAULT_CRITICAL_ACTIONS,
  type AttributeDefinition,
  type Attributes,
  type Condition,
  type Rule,
} from './policy.model';
import type { PermissionEvent } from '../policyset/policyset.events';

export interface IndexedRule {
  /** `<policyId>/<ruleId>`: unique in the tenant. */
  id: string;
  rule: Rule;
  condition: CompiledCondition | undefined;
  /** The compiled condition as shared with the tenant's other rules of the same `when`. */
  shared?: SharedCondition;
}

/** One compiled condition for every rule of the tenant with the same `when` (rules repeat a few conditions). */
interface SharedCondition {
  key: string;
  compiled: CompiledCondition;
  rules: number;
}

/** subject key → its rules, in the order a decision reads them */
export type BySubject = ReadonlyMap<string, readonly IndexedRule[]>;
type ByAction = Map<string, Map<string, IndexedRule[]>>;

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
  /** rulesFor's merged maps, by resource type then action (`''` when not in the index): dropped at every rule change. */
  private readonly merged = new Map<string, Map<string, BySubject>>();
  /** Compiled conditions by their JSON, shared by the rules that use them; a definition change starts afresh. */
  private readonly conditions = new Map<string, SharedCondition>();

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
        this.conditions.clear();
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
    this.merged.clear();
    const previous = this.policies.get(policyId);
    if (previous) {
      for (const r of previous.rules) {
        this.unindex(r);
        if (r.shared) this.release(r.shared);
      }
    }
    if (!rules) {
      this.policies.delete(policyId);
      return;
    }
    const indexed = rules.map((rule): IndexedRule => {
      const shared = rule.when ? this.share(rule.when) : undefined;
      return { id: `${policyId}/${rule.id}`, rule, condition: shared?.compiled, shared };
    });
    for (const r of indexed) this.indexRule(r);
    this.policies.set(policyId, { version, rules: indexed });
  }

  private share(when: Condition): SharedCondition {
    const key = JSON.stringify(when, distinctNonFinite);
    let shared = this.conditions.get(key);
    if (!shared) this.conditions.set(key, (shared = { key, compiled: compileCondition(when, this.definitions), rules: 0 }));
    shared.rules++;
    return shared;
  }

  private release(shared: SharedCondition): void {
    // after a definition change the map holds new compilations: leave those alone
    if (--shared.rules === 0 && this.conditions.get(shared.key) === shared) this.conditions.delete(shared.key);
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
   * The rules that may apply to a resource type and action, by subject key; each key's
   * list in the order (type, action), (type, *), (*, action), (*, *). A decision then
   * costs one look-up per subject key of its closure, however many rules the tenant has.
   * Where more than one of those four exist, they are merged once per rule change (keyed
   * only by types and actions in the index, so requests cannot grow it).
   */
  rulesFor(resource: string, action: string): BySubject | undefined {
    const byType = this.index.get(resource);
    const byAnyType = resource !== '*' ? this.index.get('*') : undefined;
    const a = byType?.get(action);
    const b = action !== '*' ? byType?.get('*') : undefined;
    const c = byAnyType?.get(action);
    const d = action !== '*' ? byAnyType?.get('*') : undefined;
    const found = (a ? 1 : 0) + (b ? 1 : 0) + (c ? 1 : 0) + (d ? 1 : 0);
    if (found <= 1) return a ?? b ?? c ?? d;
    // '' is never a rule's resource type or action (NAME_PATTERN or '*')
    const typeKey = byType ? resource : '';
    const actionKey = a || c ? action : '';
    let byAction = this.merged.get(typeKey);
    if (!byAction) this.merged.set(typeKey, (byAction = new Map()));
    let rules = byAction.get(actionKey);
    if (!rules) byAction.set(actionKey, (rules = mergedBySubject([a, b, c, d])));
    return rules;
  }
}

/** JSON writes NaN and ±Infinity as null: keep them apart from null (and from each other) in a condition's key. */
function distinctNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? { nonFinite: String(value) } : value;
}

function mergedBySubject(sources: readonly (ReadonlyMap<string, readonly IndexedRule[]> | undefined)[]): BySubject {
  const out = new Map<string, IndexedRule[]>();
  for (const source of sources) {
    if (!source) continue;
    for (const [subject, rules] of source) {
      if (rules.length === 0) continue;
      const list = out.get(subject);
      if (list) list.push(...rules);
      else out.set(subject, [...rules]);
    }
  }
  return out;
}
