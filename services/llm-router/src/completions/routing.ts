import { PalisadeError } from '@palisade/contracts';
import type { CatalogState } from '../catalog/catalog.decider';
import type { Capability, ComplianceClass, ModelDefinition, ProviderDefinition } from '../catalog/catalog.events';
import type { EntityType } from '../guards/pii.detector';

/** How sensitive a request is; declared by the caller, raised by what the guards find, never lowered. */
export type Classification = 'public' | 'internal' | 'confidential' | 'restricted';
export const CLASSIFICATIONS: readonly Classification[] = ['public', 'internal', 'confidential', 'restricted'];
const RANK: Record<Classification, number> = { public: 0, internal: 1, confidential: 2, restricted: 3 };

/** Most attempts per request, fallbacks included (no loops). */
export const MAX_ATTEMPTS = 3;

/** What a detected entity makes the request at least: personal data is confidential, a secret restricted. */
const FLOOR_OF: Record<EntityType, Classification> = {
  email: 'confidential',
  phone: 'confidential',
  ip: 'confidential',
  card: 'confidential',
  iban: 'confidential',
  us_ssn: 'confidential',
  cn_resident_id: 'confidential',
  uk_nino: 'confidential',
  date_of_birth: 'confidential',
  secret: 'restricted',
};

/** The higher of two classes. */
export function higher(a: Classification, b: Classification): Classification {
  return RANK[a] >= RANK[b] ? a : b;
}

/**
 * A tenant's rule raising the class of the requests it matches (guard policy
 * `classificationRules`): every field given must match — `team` one of the caller's teams,
 * `agent` the calling agent, `model` the model or route the request names or a model that
 * serves it (a route's candidate or fallback, when it is tried) — and at least one is given.
 */
export interface ClassificationRule {
  team?: string;
  agent?: string;
  model?: string;
  atLeast: Exclude<Classification, 'public'>;
}

/** Who is asking for what, as the rules see it. */
export interface RuleSubject {
  teams: readonly string[];
  /** The calling agent; absent for a person calling directly. */
  agentId?: string;
  /** The model or route named by the request. */
  model: string;
  /** The models tried for it so far, the one about to be tried last (none: the class before routing). */
  served?: readonly string[];
}

export function ruleMatches(rule: ClassificationRule, subject: RuleSubject): boolean {
  return callerMatches(rule, subject) && (rule.model === undefined || rule.model === subject.model || (subject.served?.includes(rule.model) ?? false));
}

/** Whether the rule's team and agent (those given) match the caller. */
function callerMatches(rule: ClassificationRule, subject: RuleSubject): boolean {
  return (rule.team === undefined || subject.teams.includes(rule.team)) && (rule.agent === undefined || rule.agent === subject.agentId);
}

/**
 * The declared class raised by every matching rule (never lowered), and the positions of
 * the rules that raised it (each matching rule above the declared class), for the audit event.
 */
export function raisedByRules(declared: Classification, rules: readonly ClassificationRule[], subject: RuleSubject): { classification: Classification; raisedBy: number[] } {
  const raisedBy: number[] = [];
  let classification = declared;
  for (let i = 0; i < rules.length; i++) {
    if (RANK[rules[i].atLeast] <= RANK[declared] || !ruleMatches(rules[i], subject)) continue;
    raisedBy.push(i);
    classification = higher(classification, rules[i].atLeast);
  }
  return { classification, raisedBy };
}

/**
 * The rules as they apply to one caller's request, before any model is tried: the class
 * they give it (`before`) and the rules matching the caller that name another model, which
 * apply once that model is tried (`onModel`). Made once per request: the class per
 * candidate (`classWhenServed`) is then a look at a few rules, not a pass over all of them.
 */
export interface CallerRules {
  before: Classification;
  onModel: ReadonlyArray<{ model: string; atLeast: Classification }>;
}

export function callerRules(declared: Classification, rules: readonly ClassificationRule[], subject: Omit<RuleSubject, 'served'>): CallerRules {
  let before = declared;
  const onModel: Array<{ model: string; atLeast: Classification }> = [];
  for (const rule of rules) {
    if (RANK[rule.atLeast] <= RANK[declared] || !callerMatches(rule, subject)) continue;
    if (rule.model === undefined || rule.model === subject.model) before = higher(before, rule.atLeast);
    else onModel.push({ model: rule.model, atLeast: rule.atLeast });
  }
  return { before, onModel };
}

/** The class the rules give once these models have been tried (as `raisedByRules` with `served`). */
export function classWhenServed(rules: CallerRules, served: readonly string[]): Classification {
  let classification = rules.before;
  for (const rule of rules.onModel) if (served.includes(rule.model)) classification = higher(classification, rule.atLeast);
  return classification;
}

/**
 * A request's class once these models have been tried for it, the last one about to be:
 * the rules matching any of them apply (so a class never drops from one attempt to the
 * next). Without rules on models, one class for every candidate.
 */
export type ClassOf = (served: readonly string[]) => Classification;

/** The declared class, raised by every entity found (never lowered). */
export function classify(declared: Classification, found: readonly EntityType[]): Classification {
  return found.reduce<Classification>((c, type) => higher(c, FLOOR_OF[type]), declared);
}

/** The highest class a provider of this compliance class may receive: confidential and above go only to private providers. */
export function ceilingOf(compliance: ComplianceClass): Classification {
  return compliance === 'private' ? 'restricted' : 'internal';
}

export function permits(compliance: ComplianceClass, classification: Classification): boolean {
  return RANK[classification] <= RANK[ceilingOf(compliance)];
}

export interface Candidate {
  model: ModelDefinition;
  provider: ProviderDefinition;
  /** The class the request has when this candidate is tried (its own rules and those of the candidates before it applied). */
  classification: Classification;
}

const COMPLIANCE_RANK: Record<ComplianceClass, number> = { external: 0, private: 1 };

/** Whether a model can serve a request that uses these capabilities (a model that declares none is taken as able). */
export function capable(model: ModelDefinition, uses: readonly Capability[]): boolean {
  return model.capabilities === undefined || uses.every((c) => model.capabilities!.includes(c));
}

/** The capabilities a request body uses (either API): tools offered, images anywhere in its messages, system or tool results. */
export function capabilitiesOf(body: Record<string, unknown>): Capability[] {
  const uses: Capability[] = [];
  if (Array.isArray(body.tools) && body.tools.length > 0) uses.push('tools');
  const parts = [body.system ?? null, body.messages ?? null];
  const images = hasImageType(parts);
  if (images === undefined ? /"type":"(image_url|image)"/.test(JSON.stringify(parts)) : images) uses.push('images');
  return uses;
}

/**
 * Whether the JSON of `v` holds `"type":"image_url"` or `"type":"image"`, found without
 * making it: a member whose key's JSON ends in `"type"` (`type`, or a key ending in a
 * quote and `type`) with that string value (strings are never read: JSON escapes their
 * quotes). Undefined for what JSON.parse does not make (the caller stringifies it).
 */
export function hasImageType(v: unknown): boolean | undefined {
  if (typeof v !== 'object' || v === null) return typeof v === 'function' || typeof v === 'symbol' || typeof v === 'bigint' ? undefined : false;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return undefined;
    for (let i = 0; i < v.length; i++) {
      const found = hasImageType(v[i]);
      if (found !== false) return found;
    }
    return false;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if ((proto !== Object.prototype && proto !== null) || typeof (v as { toJSON?: unknown }).toJSON === 'function') return undefined;
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    const item = o[key];
    if ((item === 'image_url' || item === 'image') && (key === 'type' || key.endsWith('"type'))) return true;
    const found = hasImageType(item);
    if (found !== false) return found;
  }
  return false;
}

/** The model ids a request naming `model` may be served by: a route's candidates, or the model itself (none: no such name). */
export function candidatesOf(catalog: CatalogState, model: string): readonly string[] {
  if (Object.hasOwn(catalog.routes, model)) return catalog.routes[model].candidates;
  return Object.hasOwn(catalog.models, model) ? [model] : [];
}

/**
 * The candidates a request may be sent to, in order, at most `MAX_ATTEMPTS`:
 * `model` names a route (its candidates) or a model. The class is raised per candidate
 * before it is tried (`classOf`: the tenant's rules naming that model apply), and a
 * candidate is kept only if its provider may receive the class it then has, and only
 * models able to do what the request uses (tools, images); a fallback is never of a lower
 * compliance class than the first candidate, nor a model with a smaller context window,
 * nor tried at a lower class than the attempt before it (the rules of every candidate
 * tried before it still apply). No permitted candidate: the request fails (`forbidden`
 * for the class, `validation` for capabilities), it is never sent where it may not go.
 */
export function plan(catalog: CatalogState, model: string, classification: Classification | ClassOf, uses: readonly Capability[] = [], random: () => number = Math.random): Candidate[] {
  const classOf: ClassOf = typeof classification === 'function' ? classification : () => classification;
  const route = Object.hasOwn(catalog.routes, model) ? catalog.routes[model] : undefined;
  const ids = candidatesOf(catalog, model);
  if (ids.length === 0) throw new PalisadeError('not_found', 'model: no such model or route');
  const all = ids.flatMap((id, i) => {
    const m = catalog.models[id];
    const p = m && catalog.providers[m.providerId];
    return m && p ? [{ model: m, provider: p, weight: route?.weights?.[i], classification: classOf([id]) }] : [];
  });
  const permitted = all.filter((c) => permits(c.provider.compliance, c.classification));
  if (permitted.length === 0) {
    const classes = [...new Set(all.map((c) => c.classification))];
    const lowest = classes.reduce<Classification>((low, c) => (RANK[c] < RANK[low] ? c : low), 'restricted');
    const what = classes.length > 1 ? `the class its rules give it (${all.map((c) => `${c.model.modelId}: ${c.classification}`).join(', ')})` : `${lowest} data`;
    throw new PalisadeError('forbidden', `no provider of model ${model} may receive ${what}: refused, nothing was sent`, { classification: lowest });
  }
  const able = permitted.filter((c) => capable(c.model, uses));
  if (able.length === 0) throw new PalisadeError('validation', `no permitted model of ${model} can serve a request that uses ${uses.join(' and ')}`);
  const first = drawn(able, random);
  const planned: Candidate[] = [{ model: first.model, provider: first.provider, classification: first.classification }];
  for (const c of able) {
    if (planned.length >= MAX_ATTEMPTS) break;
    if (c === first || COMPLIANCE_RANK[c.provider.compliance] < COMPLIANCE_RANK[first.provider.compliance] || c.model.contextWindow < first.model.contextWindow) continue;
    // tried after the ones before it: their rules still apply
    const at = classOf([...planned.map((p) => p.model.modelId), c.model.modelId]);
    if (permits(c.provider.compliance, at)) planned.push({ model: c.model, provider: c.provider, classification: at });
  }
  return planned;
}

/** The first candidate: by weight among those with one above 0 (a route with weights), else the first in order. */
function drawn<T extends { weight?: number }>(candidates: readonly T[], random: () => number): T {
  const weighted = candidates.filter((c) => (c.weight ?? 0) > 0);
  const total = weighted.reduce((sum, c) => sum + c.weight!, 0);
  if (total === 0) return candidates[0];
  let at = random() * total;
  for (const c of weighted) {
    at -= c.weight!;
    if (at < 0) return c;
  }
  return weighted[weighted.length - 1];
}

/**
 * The sequence of attempts: the plan, then its first candidate again while attempts remain
 * (one candidate: up to three tries), at the class the whole plan reached (the highest,
 * the last one's) and only if its provider may still receive it.
 */
export function attemptsOf(candidates: readonly Candidate[]): Candidate[] {
  const attempts = [...candidates];
  const [first] = candidates;
  const reached = candidates.at(-1)?.classification;
  if (!first || !reached || !permits(first.provider.compliance, reached)) return attempts;
  while (attempts.length < MAX_ATTEMPTS) attempts.push({ ...first, classification: reached });
  return attempts;
}
